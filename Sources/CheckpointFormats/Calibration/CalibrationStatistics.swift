import TensorCore

/// Statistics of a weight's inputs, gathered on calibration data by another tool: what passes that
/// need data read instead of running the model.
///
/// Accepted files (detected by content, then extension):
/// - llama.cpp imatrix files, legacy `.dat` or GGUF: per weight the mean squared input activation
///   `E[x_j²]` of every input column `j` (see `ImportanceMatrix`);
/// - safetensors with, per linear weight `<W>`, `<W>.act_sq` (F32 `[in]`, `E[x_j²]`) and/or
///   `<W>.hessian` (F32 `[in, in]`, `E[x xᵀ]`, whose diagonal is `E[x_j²]`), and/or `<W>.grads`
///   (`[samples, elements of W]`: row i the flattened per-sample gradient of the loss, row-major like
///   `W`; what the empirical Fisher of oBERT pruning is built from). Any float dtype.
/// Weights are looked up by name, then by their llama.cpp GGUF name (an HF-named checkpoint with an
/// imatrix from llama-imatrix) or HF name, via `LlamaTensorNames`.
public struct CalibrationStatistics: Sendable {
    public let path: String
    private let importance: ImportanceMatrix?
    private let tensors: Checkpoint?

    /// Reads `path`; bad files throw errors that name it (exit 65).
    public static func load(path: String) throws -> CalibrationStatistics {
        let file = try MappedFile(path: path)
        let magic = Array(file.bytes.prefix(4))
        if magic == GGUFHeader.magic || path.hasSuffix(".dat") {
            return CalibrationStatistics(path: path, importance: try ImportanceMatrix.load(path: path), tensors: nil)
        }
        guard path.hasSuffix(".safetensors") else {
            throw CalibrationError(file: path, message: "not a calibration file (expected an imatrix .dat or .gguf, or a .safetensors statistics file)")
        }
        return CalibrationStatistics(path: path, importance: nil, tensors: try SafetensorsReader.open(path: path))
    }

    /// `E[x_j²]` for each input column of weight `name` (the imatrix entry, `<name>.act_sq`, or the
    /// diagonal of `<name>.hessian`), or nil when the file does not cover it. Throws when the stored
    /// statistic is malformed (wrong dtype or shape, negative or non-finite values).
    public func activationSquares(for name: String) throws -> [Float]? {
        for candidate in [name] + LlamaTensorNames.aliases(of: name) {
            if let values = try lookUp(candidate) {
                if let bad = values.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
                    throw CalibrationError(file: path, message: "statistics for '\(candidate)' hold a negative or non-finite value (element \(bad))")
                }
                return values
            }
        }
        return nil
    }

    /// True when the file has statistics for weight `name` (under either spelling: activation
    /// squares, a Hessian or per-sample gradients), checked without reading them.
    public func covers(_ name: String) -> Bool {
        ([name] + LlamaTensorNames.aliases(of: name)).contains { candidate in
            importance?[candidate] != nil
                || [".act_sq", ".hessian", ".grads"].contains { tensors?[candidate + $0] != nil }
        }
    }

    /// The per-sample gradients of weight `name` (`<name>.grads`): `samples` rows of `elementCount`
    /// values, row i the flattened gradient of sample i (row-major like the weight), or nil when the
    /// file has none for it (imatrix files never do). Throws when the tensor is not a 2-D float
    /// tensor, its rows do not have `elementCount` values, it has no rows, or a value is not finite.
    public func gradients(for name: String, elementCount: Int) throws -> (samples: Int, values: [Float])? {
        for candidate in [name] + LlamaTensorNames.aliases(of: name) {
            guard let entry = tensors?[candidate + ".grads"] else { continue }
            guard case .dense(let t) = entry.payload, t.dtype.isConvertibleFloat, t.shape.rank == 2 else {
                throw CalibrationError(file: path, message: "'\(entry.name)' must be a 2-D float tensor [samples, elements of the weight]")
            }
            let (samples, columns) = (t.shape.dimensions[0], t.shape.dimensions[1])
            guard columns == elementCount else {
                throw CalibrationError(file: path, message: "'\(entry.name)' has \(columns) values per sample, but '\(name)' has \(elementCount) elements")
            }
            guard samples > 0 else {
                throw CalibrationError(file: path, message: "'\(entry.name)' holds no samples")
            }
            let values = try t.floats()
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw CalibrationError(file: path, message: "'\(entry.name)' holds a non-finite value (sample \(bad / columns), element \(bad % columns))")
            }
            return (samples, values)
        }
        return nil
    }

    /// The full `E[x xᵀ]` of weight `name` (`<name>.hessian`, row-major `[in, in]`), or nil when the
    /// file has none for it (imatrix files never do).
    public func hessian(for name: String) throws -> [Float]? {
        for candidate in [name] + LlamaTensorNames.aliases(of: name) {
            if let (values, _) = try storedHessian(candidate) {
                if let bad = values.firstIndex(where: { !$0.isFinite }) {
                    throw CalibrationError(file: path, message: "'\(candidate).hessian' holds a non-finite value (element \(bad))")
                }
                return values
            }
        }
        return nil
    }

    /// `<name>.hessian` and its size, checked to be a square 2-D float tensor.
    private func storedHessian(_ name: String) throws -> ([Float], Int)? {
        guard let entry = tensors?[name + ".hessian"] else { return nil }
        guard case .dense(let t) = entry.payload, t.dtype.isConvertibleFloat, t.shape.rank == 2,
              t.shape.dimensions[0] == t.shape.dimensions[1] else {
            throw CalibrationError(file: path, message: "'\(entry.name)' must be a square 2-D float tensor")
        }
        return (try t.floats(), t.shape.dimensions[0])
    }

    private func lookUp(_ name: String) throws -> [Float]? {
        if let importance { return importance[name] }
        guard let tensors else { return nil }
        if let entry = tensors[name + ".act_sq"] {
            guard case .dense(let t) = entry.payload, t.dtype.isConvertibleFloat, t.shape.rank == 1 else {
                throw CalibrationError(file: path, message: "'\(entry.name)' must be a 1-D float tensor")
            }
            return try t.floats()
        }
        if let (values, n) = try storedHessian(name) {
            return (0..<n).map { values[$0 * n + $0] }
        }
        return nil
    }
}

/// A calibration file that cannot be used (exit 65).
public struct CalibrationError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    public let file: String
    public let message: String

    public init(file: String, message: String) {
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}
