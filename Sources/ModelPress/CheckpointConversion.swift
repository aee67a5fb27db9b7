import TensorCore
import CheckpointFormats

/// `modelpress convert`: re-writes a checkpoint in the format its output extension picks
/// (`.safetensors` or `.gguf`), optionally casting float tensors (`--dtype`) or quantizing weights to
/// ggml block types the way llama-quantize does (`--type`, optional `--imatrix`).
///
/// Streaming: tensors are read from the memory map and written one at a time, so peak memory is
/// about one tensor (its float copy and its encoded copy), whatever the checkpoint size. Non-float
/// tensors are copied unchanged; casts round to nearest even (FP8 saturates). ggml block tensors are
/// copied into GGUF outputs and dequantized (to `--dtype`, default F32) for safetensors outputs;
/// integer, FP8 and codebook tensors are copied exactly into GGUF outputs (`GGUFQuantizedLayout`,
/// never cast by `--dtype`) and dequantized for safetensors outputs.
public struct CheckpointConversion: Sendable {
    public struct Options: Sendable {
        /// Cast float tensors to this dtype (F32, F16 or BF16).
        public var dtype: DType?
        /// Quantize weights to a ggml type or preset (GGUF outputs only).
        public var quantization: QuantizationTarget?
        /// Importance weights per input column for the block quantizers.
        public var importancePath: String?
        /// For `.pure` types: apply llama-quantize's shape fallback instead of refusing a tensor
        /// whose rows are not whole blocks.
        public var allowFallback = false
        public var threadCount = 1

        public init(dtype: DType? = nil, quantization: QuantizationTarget? = nil, importancePath: String? = nil,
                    allowFallback: Bool = false, threadCount: Int = 1) {
            self.dtype = dtype
            self.quantization = quantization
            self.importancePath = importancePath
            self.allowFallback = allowFallback
            self.threadCount = threadCount
        }
    }

    public enum OutputFormat: Sendable { case safetensors, gguf }

    public let inputPath: String
    public let outputPath: String
    public let outputFormat: OutputFormat
    /// The output path's writer and zstd settings.
    public var output: CheckpointOutput
    public let options: Options
    /// Lines for stderr (tensors the imatrix does not cover, ...), filled by `run()`.
    public private(set) var warnings: [String] = []

    public static let castTargets: [DType] = [.f32, .f16, .bf16]

    public init(inputPath: String, outputPath: String, options: Options = Options()) throws(UsageError) {
        if let t = options.dtype, !CheckpointConversion.castTargets.contains(t) {
            throw UsageError("--dtype must be f32, f16 or bf16 (got \(t.rawValue.lowercased()))")
        }
        output = try CheckpointOutput(path: outputPath)
        outputFormat = output.format == .gguf ? .gguf : .safetensors
        if options.quantization != nil && outputFormat != .gguf { throw UsageError("--type needs a .gguf output") }
        if options.importancePath != nil && options.quantization == nil { throw UsageError("--imatrix needs --type") }
        self.inputPath = inputPath
        self.outputPath = outputPath
        self.options = options
    }

    /// The dtype a dense tensor of `dtype` is written as.
    public func outputDType(for dtype: DType) -> DType {
        guard let target = options.dtype, dtype.isConvertibleFloat else { return dtype }
        return target
    }

    /// Runs the conversion and returns the written checkpoint's summary.
    @discardableResult
    public mutating func run() throws -> CheckpointSummary {
        try UsageError.refuseOverwriting(input: inputPath, output: outputPath)
        let input = try CheckpointReader.open(path: inputPath)
        let format = outputFormat
        try output.write(threadCount: options.threadCount) { path in
            switch format {
            case .safetensors: try writeSafetensors(input, to: path)
            case .gguf: try writeGGUF(input, to: path)
            }
        }
        return try CheckpointSummary(path: outputPath)
    }

    private func writeSafetensors(_ input: Checkpoint, to path: String) throws {
        var planned: [SafetensorsWriter.PlannedTensor] = []
        for entry in input.entries {
            // Dense tensors keep their dtype unless --dtype casts them; compressed ones are reconstructed.
            let dtype: DType = if case .dense(let t) = entry.payload { outputDType(for: t.dtype) } else { options.dtype ?? .f32 }
            planned.append(.init(name: entry.name, dtype: dtype, shape: entry.shape))
        }
        let metadata = input.metadata.map { (key: $0.key, value: $0.value.description) }
        let threads = options.threadCount
        try SafetensorsWriter.write(to: path, metadata: metadata, tensors: planned) { position in
            let entry = input.entries[position]
            defer { entry.releaseResidentPages() }
            if case .dense(let t) = entry.payload { return try t.converted(to: planned[position].dtype) }
            return try DenseTensor(floats: entry.floatValues(threadCount: threads)!, shape: entry.shape, dtype: planned[position].dtype)
        }
    }

    private mutating func writeGGUF(_ input: Checkpoint, to path: String) throws {
        var entries = try input.entries.map { try $0.expandingShared() }   // shared tensors are written expanded
        var metadata = input.metadata.map { (key: $0.key, value: $0.value.ggufValue) }
        var assigned = [GGMLType?](repeating: nil, count: entries.count)
        var importance: ImportanceMatrix?
        if let target = options.quantization {
            if input.metadataValue("general.architecture") != nil { entries = LlamaTensorOrder.sorted(entries) }
            let rules = LlamaTensorTypeRules(target: target, allowFallback: options.allowFallback)
            assigned = try rules.assign(entries.map { ($0.name, $0.shape) })
            if let path = options.importancePath { importance = try ImportanceMatrix.load(path: path) }
            metadata = LlamaQuantizeMetadata.update(metadata, fileType: target.fileType, importance: importance, importancePath: options.importancePath)
        }
        // Quantized (integer, FP8, codebook) tensors are stored as their parts, which --dtype does not cast.
        var parts = Set<[UInt8]>()
        if entries.contains(where: { if case .quantized = $0.payload { true } else { false } }) {
            var types: [[UInt8]: GGMLType] = [:]
            for (entry, type) in zip(entries, assigned) {
                if case .quantized = entry.payload, let type {
                    throw ConversionError.requantize(tensor: entry.name, from: entry.encodingName, to: type.name)
                }
                types[Array(entry.name.utf8)] = type
            }
            let kept = Set(entries.filter { if case .quantized = $0.payload { false } else { true } }.map { Array($0.name.utf8) })
            (entries, metadata) = try GGUFQuantizedLayout.expand(entries: entries, metadata: metadata)
            assigned = entries.map { types[Array($0.name.utf8)] ?? nil }
            parts = Set(entries.map { Array($0.name.utf8) }.filter { !kept.contains($0) })
        }
        var planned: [GGUFWriter.PlannedTensor] = []
        for (entry, type) in zip(entries, assigned) {
            switch entry.payload {
            case .dense(let tensor):
                if let type {
                    guard tensor.dtype.isConvertibleFloat else { throw ConversionError.notFloat(tensor: entry.name, dtype: tensor.dtype) }
                    let rowBytes = type.rowByteCount(elements: tensor.shape.dimensions.last ?? 1)!
                    planned.append(.init(name: entry.name, typeID: type.rawValue, shape: tensor.shape,
                                         byteCount: rowBytes * (tensor.elementCount / max(tensor.shape.dimensions.last ?? 1, 1))))
                } else {
                    let dtype = parts.contains(Array(entry.name.utf8)) ? tensor.dtype : outputDType(for: tensor.dtype)
                    guard let ggml = GGMLType(denseDType: dtype) else { throw ConversionError.unstorable(tensor: entry.name, dtype: dtype) }
                    planned.append(.init(name: entry.name, typeID: ggml.rawValue, shape: tensor.shape,
                                         byteCount: dtype.byteCount(elementCount: tensor.elementCount)!))
                }
            case .ggml(let tensor):
                if let type, type.rawValue != tensor.typeID {
                    throw ConversionError.requantize(tensor: entry.name, from: tensor.typeName, to: type.name)
                }
                planned.append(.init(name: entry.name, typeID: tensor.typeID, shape: tensor.shape, byteCount: tensor.storage.count))
            case .quantized, .shared:
                preconditionFailure("quantized and shared tensors were expanded above")
            }
        }
        for (entry, type) in zip(entries, assigned) where type?.isBlockQuantized == true && importance != nil {
            guard let weights = importance![entry.name] else {
                warnings.append("did not find importance weights for \(entry.name)")
                continue
            }
            // llama-quantize exempts the token embeddings from the length check: it drops the entry.
            let rowLength = entry.shape.dimensions.last ?? 1
            if ["token_embd.weight", "per_layer_token_embd.weight"].contains(entry.name), weights.count != rowLength {
                warnings.append("importance weights for \(entry.name) have \(weights.count) values for rows of \(rowLength); quantizing it without them")
                importance = importance!.removing(entry.name)
            }
        }
        let threads = options.threadCount
        try GGUFWriter.write(to: path, metadata: metadata, tensors: planned) { [self, entries, parts] position in
            let entry = entries[position]
            defer { entry.releaseResidentPages() }
            switch entry.payload {
            case .ggml(let t): return t.storage
            case .quantized, .shared: preconditionFailure("quantized and shared tensors were expanded above")
            case .dense(let t):
                if parts.contains(Array(entry.name.utf8)) { return t.storage }
                guard let type = assigned[position] else { return try t.converted(to: outputDType(for: t.dtype)).storage }
                if let dtype = type.denseDType { return try t.converted(to: dtype).storage }
                return try GGMLQuantization.quantize(t, name: entry.name, to: type, importance: importance?[entry.name], threadCount: threads).storage
            }
        }
    }
}

/// Conversions the input cannot take (exit 65).
public enum ConversionError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    case unstorable(tensor: String, dtype: DType)
    case notFloat(tensor: String, dtype: DType)
    case requantize(tensor: String, from: String, to: String)

    public var description: String {
        switch self {
        case .unstorable(let n, let d): "tensor '\(n)' has dtype \(d), which GGUF cannot store (GGUF holds F32, F16, BF16, F64 and I8–I64)"
        case .notFloat(let n, let d): "tensor '\(n)' has dtype \(d); only float tensors can be quantized"
        case .requantize(let n, let a, let b): "tensor '\(n)' is already \(a); requantizing to \(b) is not supported (start from the F32/F16/BF16 model)"
        }
    }
}
