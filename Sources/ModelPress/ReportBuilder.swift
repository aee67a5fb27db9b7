import TensorCore
import CheckpointFormats
import Reports

/// Builds the per-tensor error report of a compressed checkpoint against its original
/// (`modelpress report`, and the end of `compress`).
///
/// Tensors are matched by name. For each: bytes in (the original's storage) and out (the
/// compressed storage as written), and the metrics of `ErrorMetrics` between the original values
/// and the compressed tensor's reconstruction. Non-float tensors copied as they are count as exact.
public enum ReportBuilder {
    /// A report comparing `compressed` with `original`; throws when a tensor is missing or its shape changed.
    public static func report(original: Checkpoint, compressed: Checkpoint, input: String, output: String,
                              recipe: String?, threadCount: Int = 1) throws -> CompressionReport {
        var records: [TensorRecord] = []
        for before in original.entries {
            guard let after = compressed[before.name] else { throw ReportBuildError.missingTensor(before.name) }
            guard after.shape.elementCount == before.shape.elementCount else {
                throw ReportBuildError.shapeChanged(tensor: before.name, from: before.shape.dimensions, to: after.shape.dimensions)
            }
            records.append(try record(before: before, after: after, threadCount: threadCount))
        }
        return CompressionReport(version: ModelPressVersion.string, input: input, output: output, recipe: recipe, tensors: records)
    }

    /// The values of any payload as Float, or nil for non-float dense tensors.
    static func values(_ entry: TensorEntry, threadCount: Int) throws -> [Float]? {
        switch entry.payload {
        case .dense(let t): return t.dtype.isConvertibleFloat ? try t.floats() : nil
        case .ggml(let t): return try GGMLQuantization.dequantize(t, name: entry.name, threadCount: threadCount)
        case .quantized(let q): return q.dequantized()
        }
    }

    /// Bytes a payload takes when written (compressed-tensors parts for quantized tensors).
    static func storedByteCount(_ entry: TensorEntry) throws -> Int {
        if case .quantized(let q) = entry.payload {
            return try CompressedTensorsLayout.encode(name: entry.name, q).reduce(0) { $0 + $1.tensor.byteCount }
        }
        return entry.byteCount
    }

    static func record(before: TensorEntry, after: TensorEntry, threadCount: Int) throws -> TensorRecord {
        let inputDType = if case .dense(let t) = before.payload { t.dtype.rawValue } else { before.encodingName }
        let outputBytes = try storedByteCount(after)
        guard let x = try values(before, threadCount: threadCount), let y = try values(after, threadCount: threadCount) else {
            return TensorRecord(name: before.name, shape: before.shape, inputDType: inputDType, encoding: after.encodingName,
                                sparsity: 0, inputByteCount: before.byteCount, outputByteCount: outputBytes, relativeError: 0,
                                sqnrDecibels: .infinity, maxAbsoluteError: 0, cosine: 1)
        }
        let metrics = try ErrorMetrics(original: x, reconstruction: y)
        return TensorRecord(name: before.name, shape: before.shape, inputDType: inputDType, encoding: after.encodingName,
                            inputByteCount: before.byteCount, outputByteCount: outputBytes, metrics: metrics)
    }
}

/// The two checkpoints of `modelpress report` do not correspond (exit 65).
public enum ReportBuildError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    case missingTensor(String)
    case shapeChanged(tensor: String, from: [Int], to: [Int])

    public var description: String {
        switch self {
        case .missingTensor(let n): "tensor '\(n)' is missing from the compressed checkpoint"
        case .shapeChanged(let n, let a, let b): "tensor '\(n)' changed shape from \(a) to \(b)"
        }
    }
}
