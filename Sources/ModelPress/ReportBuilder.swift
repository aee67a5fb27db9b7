import TensorCore
import CheckpointFormats
import Reports

/// Builds the per-tensor error report of a compressed checkpoint against its original
/// (`modelpress report`, and the end of `compress`).
///
/// Tensors are matched by name. For each: bytes in (the original's storage) and out (the
/// compressed storage as written), each as its file's format stores it (`.gguf` or safetensors), and
/// the metrics of `ErrorMetrics` between the original values and the compressed tensor's
/// reconstruction. Non-float tensors copied as they are count as exact.
public enum ReportBuilder {
    /// The report of the checkpoint at `compressedPath` against the one at `originalPath`
    /// (`modelpress report`), streaming: each tensor the compressed file's layouts decode into memory
    /// (quantized, compact sparse) is measured the moment it is decoded and only its record is kept,
    /// so peak memory follows the largest tensor rather than the checkpoint. The records equal those
    /// of `report(original:compressed:...)` on the opened checkpoints.
    public static func report(originalPath: String, compressedPath: String, calibration: CalibrationStatistics? = nil,
                              threadCount: Int = 1) throws -> CompressionReport {
        let original = try CheckpointReader.open(path: originalPath)
        let formats = storageFormats(input: originalPath, output: compressedPath)
        var measured: [[UInt8]: TensorRecord] = [:]
        let compressed = try CheckpointReader.open(path: compressedPath) { decoded in
            guard let before = original[decoded.name], before.shape.elementCount == decoded.shape.elementCount else { return decoded }
            measured[Array(decoded.name.utf8)] = try record(before: before, after: decoded, formats: formats, calibration: calibration, threadCount: threadCount)
            before.releaseResidentPages()
            return TensorEntry(name: decoded.name, tensor: try DenseTensor(dtype: .u8, shape: Shape([0]), storage: ByteStorage([])))
        }
        return try report(original: original, compressed: compressed, input: originalPath, output: compressedPath, recipe: nil,
                          calibration: calibration, threadCount: threadCount, measured: measured)
    }

    /// A report comparing `compressed` with `original`; throws when a tensor is missing or its shape changed.
    ///
    /// Tensors are measured in parallel (`threadCount` workers, each tensor on one of them); every
    /// record is computed the same way whatever the thread count, and the first problem in the
    /// original's order is the one thrown. Each tensor's mapped pages are given back once measured.
    /// With `calibration`, each weight the statistics cover also gets `output_relative_error`.
    public static func report(original: Checkpoint, compressed: Checkpoint, input: String, output: String,
                              recipe: String?, calibration: CalibrationStatistics? = nil, threadCount: Int = 1) throws -> CompressionReport {
        try report(original: original, compressed: compressed, input: input, output: output, recipe: recipe,
                   calibration: calibration, threadCount: threadCount, measured: [:])
    }

    /// The report, taking the records in `measured` as they are (their tensors are stand-ins in `compressed`).
    private static func report(original: Checkpoint, compressed: Checkpoint, input: String, output: String, recipe: String?,
                               calibration: CalibrationStatistics?, threadCount: Int, measured: [[UInt8]: TensorRecord]) throws -> CompressionReport {
        let formats = storageFormats(input: input, output: output)
        let pairs = original.entries.map { before in (before, compressed[before.name]) }
        var results = [Result<TensorRecord, any Error>?](repeating: nil, count: pairs.count)
        results.withUnsafeMutableBufferPointer { results in
            ParallelLoop.forEachRange(count: pairs.count, threadCount: threadCount) { items in
                for i in items {
                    if let done = measured[Array(pairs[i].0.name.utf8)] {
                        results[i] = .success(done)
                        continue
                    }
                    guard let after = pairs[i].1, after.shape.elementCount == pairs[i].0.shape.elementCount else { continue }
                    let perTensorThreads = pairs.count == 1 ? threadCount : 1
                    results[i] = Result { try record(before: pairs[i].0, after: after, formats: formats,
                                                         calibration: calibration, threadCount: perTensorThreads) }
                    pairs[i].0.releaseResidentPages()
                    after.releaseResidentPages()
                }
            }
        }
        var records: [TensorRecord] = []
        for (i, (before, after)) in pairs.enumerated() {
            guard let after else { throw ReportBuildError.missingTensor(before.name) }
            guard measured[Array(before.name.utf8)] != nil || after.shape.elementCount == before.shape.elementCount else {
                throw ReportBuildError.shapeChanged(tensor: before.name, from: before.shape.dimensions, to: after.shape.dimensions)
            }
            records.append(try results[i]!.get())
        }
        return CompressionReport(version: ModelPressVersion.string, input: input, output: output, recipe: recipe, tensors: records)
    }

    /// How the input and output paths store tensors (`.gguf` or safetensors), for byte counts.
    static func storageFormats(input: String, output: String) -> (input: CheckpointFormat, output: CheckpointFormat) {
        func format(_ path: String) -> CheckpointFormat { ZstdCheckpoint.innerPath(of: path).path.hasSuffix(".gguf") ? .gguf : .safetensors }
        return (format(input), format(output))
    }

    static func record(before: TensorEntry, after: TensorEntry, formats: (input: CheckpointFormat, output: CheckpointFormat),
                       calibration: CalibrationStatistics? = nil, threadCount: Int) throws -> TensorRecord {
        var record = try plainRecord(before: before, after: after, formats: formats, threadCount: threadCount)
        if let calibration, record.relativeError.isFinite {
            record.outputRelativeError = try outputRelativeError(before: before, after: after, statistics: calibration, threadCount: threadCount)
        }
        return record
    }

    static func plainRecord(before: TensorEntry, after: TensorEntry, formats: (input: CheckpointFormat, output: CheckpointFormat), threadCount: Int) throws -> TensorRecord {
        let inputDType = if case .dense(let t) = before.payload { t.dtype.rawValue } else { before.encodingName }
        let inputBytes = before.byteCount(in: formats.input), outputBytes = after.byteCount(in: formats.output)
        if let metrics = try streamedMetrics(before: before, after: after) {
            return TensorRecord(name: before.name, shape: before.shape, inputDType: inputDType, encoding: after.encodingName,
                                inputByteCount: inputBytes, outputByteCount: outputBytes, metrics: metrics)
        }
        guard let x = try before.floatValues(threadCount: threadCount), let y = try after.floatValues(threadCount: threadCount) else {
            return TensorRecord(name: before.name, shape: before.shape, inputDType: inputDType, encoding: after.encodingName,
                                sparsity: 0, inputByteCount: inputBytes, outputByteCount: outputBytes, relativeError: 0,
                                sqnrDecibels: .infinity, maxAbsoluteError: 0, cosine: 1)
        }
        let metrics = try ErrorMetrics(original: x, reconstruction: y)
        return TensorRecord(name: before.name, shape: before.shape, inputDType: inputDType, encoding: after.encodingName,
                            inputByteCount: inputBytes, outputByteCount: outputBytes, metrics: metrics)
    }

    /// `tr(ΔW H ΔWᵀ) / tr(W H Wᵀ)` for a 2-D (or more) float weight that the statistics cover, with
    /// the full `H` when the file has `<name>.hessian`, else its diagonal `E[x²]` (act_sq or an
    /// imatrix); nil when they do not cover the tensor or its rows have another length.
    static func outputRelativeError(before: TensorEntry, after: TensorEntry, statistics: CalibrationStatistics,
                                    threadCount: Int) throws -> Double? {
        guard before.shape.rank >= 2 else { return nil }
        let columns = before.shape.columnCount, rows = before.shape.elementCount / max(columns, 1)
        if let hessian = try statistics.hessian(for: before.name), hessian.count == columns * columns {
            guard let x = try before.floatValues(threadCount: threadCount), let y = try after.floatValues(threadCount: threadCount) else { return nil }
            return try ErrorMetrics.outputRelativeError(original: x, reconstruction: y, rows: rows, columns: columns, gram: hessian)
        }
        guard let diagonal = try statistics.activationSquares(for: before.name), diagonal.count == columns,
              let x = try before.floatValues(threadCount: threadCount), let y = try after.floatValues(threadCount: threadCount) else { return nil }
        return try ErrorMetrics.diagonalOutputRelativeError(original: x, reconstruction: y, rows: rows, columns: columns, activationSquares: diagonal)
    }

    /// The metrics of a dense float original against a dense float or quantized tensor, decoded and
    /// dequantized 4096 values at a time (aligned F32 values are read where they are); nil for other
    /// payloads. The values, and so the metrics, are those of `floatValues`.
    static func streamedMetrics(before: TensorEntry, after: TensorEntry) throws -> ErrorMetrics? {
        guard case .dense(let original) = before.payload, original.dtype.isConvertibleFloat else { return nil }
        let count = original.elementCount
        switch after.payload {
        case .quantized(let q):
            return original.storage.withUnsafeBytes { w in
                ErrorMetrics(count: count, original: { range, out in values(w, original.dtype, range, scratch: out) },
                             reconstruction: { range, out in
                                 q.dequantize(elements: range, into: out.baseAddress!)
                                 return UnsafeBufferPointer(out)
                             })
            }
        case .dense(let t) where t.dtype.isConvertibleFloat:
            return original.storage.withUnsafeBytes { w in
                t.storage.withUnsafeBytes { r in
                    ErrorMetrics(count: count, original: { range, out in values(w, original.dtype, range, scratch: out) },
                                 reconstruction: { range, out in values(r, t.dtype, range, scratch: out) })
                }
            }
        default:
            return nil
        }
    }

    /// Elements `range` of a float tensor's bytes: a view of them when they are aligned F32, else
    /// decoded into `scratch`.
    private static func values(_ bytes: UnsafeRawBufferPointer, _ dtype: DType, _ range: Range<Int>,
                               scratch: UnsafeMutableBufferPointer<Float>) -> UnsafeBufferPointer<Float> {
        let start = dtype.byteCount(elementCount: range.lowerBound)!, end = dtype.byteCount(elementCount: range.upperBound)!
        let piece = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
        if dtype == .f32, let base = piece.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            return UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: range.count)
        }
        FloatCodec.decode(piece, as: dtype, into: scratch)
        return UnsafeBufferPointer(scratch)
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
