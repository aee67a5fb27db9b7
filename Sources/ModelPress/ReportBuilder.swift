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
    /// A report comparing `compressed` with `original`; throws when a tensor is missing or its shape changed.
    public static func report(original: Checkpoint, compressed: Checkpoint, input: String, output: String,
                              recipe: String?, threadCount: Int = 1) throws -> CompressionReport {
        var records: [TensorRecord] = []
        let inputFormat: CheckpointFormat = ZstdCheckpoint.innerPath(of: input).path.hasSuffix(".gguf") ? .gguf : .safetensors
        let outputFormat: CheckpointFormat = ZstdCheckpoint.innerPath(of: output).path.hasSuffix(".gguf") ? .gguf : .safetensors
        for before in original.entries {
            guard let after = compressed[before.name] else { throw ReportBuildError.missingTensor(before.name) }
            guard after.shape.elementCount == before.shape.elementCount else {
                throw ReportBuildError.shapeChanged(tensor: before.name, from: before.shape.dimensions, to: after.shape.dimensions)
            }
            records.append(try record(before: before, after: after, formats: (inputFormat, outputFormat), threadCount: threadCount))
        }
        return CompressionReport(version: ModelPressVersion.string, input: input, output: output, recipe: recipe, tensors: records)
    }

    static func record(before: TensorEntry, after: TensorEntry, formats: (input: CheckpointFormat, output: CheckpointFormat), threadCount: Int) throws -> TensorRecord {
        let inputDType = if case .dense(let t) = before.payload { t.dtype.rawValue } else { before.encodingName }
        let inputBytes = before.byteCount(in: formats.input), outputBytes = after.byteCount(in: formats.output)
        guard let x = try before.floatValues(threadCount: threadCount), let y = try after.floatValues(threadCount: threadCount) else {
            return TensorRecord(name: before.name, shape: before.shape, inputDType: inputDType, encoding: after.encodingName,
                                sparsity: 0, inputByteCount: inputBytes, outputByteCount: outputBytes, relativeError: 0,
                                sqnrDecibels: .infinity, maxAbsoluteError: 0, cosine: 1)
        }
        let metrics = try ErrorMetrics(original: x, reconstruction: y)
        return TensorRecord(name: before.name, shape: before.shape, inputDType: inputDType, encoding: after.encodingName,
                            inputByteCount: inputBytes, outputByteCount: outputBytes, metrics: metrics)
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
