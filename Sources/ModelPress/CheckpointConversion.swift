import TensorCore
import CheckpointFormats

/// `modelpress convert`: re-writes a checkpoint, optionally casting every float tensor to one dtype.
///
/// Streaming: tensors are read from the memory map and written one at a time, so peak memory is
/// about one tensor (the converted copy), whatever the checkpoint size. Non-float tensors (integers,
/// BOOL, opaque sub-byte types) are copied unchanged. Casts round to nearest even (FP8 saturates).
public struct CheckpointConversion: Sendable {
    public let inputPath: String
    public let outputPath: String
    /// The float dtype to cast to (F32, F16 or BF16), or nil to keep dtypes.
    public let targetDType: DType?

    public static let castTargets: [DType] = [.f32, .f16, .bf16]

    public init(inputPath: String, outputPath: String, targetDType: DType?) throws(UsageError) {
        if let t = targetDType, !CheckpointConversion.castTargets.contains(t) {
            throw UsageError("--dtype must be f32, f16 or bf16 (got \(t.rawValue.lowercased()))")
        }
        guard outputPath.hasSuffix(".safetensors") else {
            if outputPath.hasSuffix(".gguf") || outputPath.hasSuffix(".zst") {
                throw UsageError("\(outputPath): GGUF and zstd outputs are not yet supported; write a .safetensors file")
            }
            throw UsageError("\(outputPath): the output extension picks the writer; use .safetensors")
        }
        self.inputPath = inputPath
        self.outputPath = outputPath
        self.targetDType = targetDType
    }

    /// The dtype a tensor of `dtype` is written as.
    public func outputDType(for dtype: DType) -> DType {
        guard let target = targetDType, dtype.isConvertibleFloat else { return dtype }
        return target
    }

    /// Runs the conversion and returns the written checkpoint's summary.
    @discardableResult
    public func run() throws -> CheckpointSummary {
        if let a = FileSystem.identity(inputPath), let b = FileSystem.identity(outputPath), a == b {
            throw UsageError("\(outputPath): the output would overwrite the input")
        }
        let input = try CheckpointReader.open(path: inputPath)
        var planned: [SafetensorsWriter.PlannedTensor] = []
        var sources: [String: DenseTensor] = [:]
        for entry in input.entries {
            guard case .dense(let tensor) = entry.payload else { continue }
            planned.append(.init(name: entry.name, dtype: outputDType(for: tensor.dtype), shape: tensor.shape))
            sources[entry.name] = tensor
        }
        let metadata = input.metadata.map { (key: $0.key, value: $0.value.description) }
        try SafetensorsWriter.write(to: outputPath, metadata: metadata, tensors: planned) { plan in
            try sources[plan.name]!.converted(to: plan.dtype)
        }
        return try CheckpointSummary(path: outputPath)
    }
}
