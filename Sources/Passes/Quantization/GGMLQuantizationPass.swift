import TensorCore
import CheckpointFormats
import Recipes

/// `quantize.ggml`: llama.cpp block quantization (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K…Q6_K) of the
/// selected weights, byte-identical to llama.cpp's reference quantizers (see `BlockCodecs`).
///
/// ```
/// quantize.ggml type=Q4_K ignore="*norm*"
/// ```
/// Rows (the innermost dimension) must be whole blocks (32 values, 256 for K types). The output is
/// GGUF (`-o model.gguf`). With calibration statistics (a `calibration` step or `--calibration`),
/// each weight they cover is quantized with its importance weights `E[x_j²]` (llama.cpp's imatrix,
/// or `act_sq`), exactly as llama-quantize does with `--imatrix`; weights they do not cover are
/// quantized without, as llama-quantize does. `type=auto` takes each tensor's type from an earlier
/// `allocate.bits target=ggml` step (a mixed GGUF, as llama-quantize's presets make, but chosen by
/// measured loss per bit).
public struct GGMLQuantizationPass: CompressionPass {
    public static let name = "quantize.ggml"
    public static let summary = "llama.cpp block types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K), byte-identical to llama.cpp"

    public static let types: [GGMLType] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    public struct Options: PassOptions {
        public var type: GGMLType
        /// `type=auto`: the type comes from an `allocate.bits target=ggml` plan.
        public var planned = false

        public init(reading reader: inout OptionReader) {
            let name = reader.choice("type", default: "Q8_0", from: GGMLQuantizationPass.types.map(\.name) + ["auto"], help: "ggml block type, or auto (from allocate.bits target=ggml)")
            planned = name == "auto"
            type = GGMLType(name: name) ?? .q8_0
        }
    }

    public let options: Options
    public init(options: Options) { self.options = options }

    public static let usesCalibration = true

    public static func selectsByDefault(name: String, rank: Int) -> Bool { isWeightMatrix(name: name, rank: rank) }

    public var takesPlannedSetting: Bool { options.planned }

    public func problem(with entry: CheckpointManifest.Entry) -> String? {
        guard let dtype = entry.dtype, dtype.isConvertibleFloat else { return "expects a dense float tensor, found \(entry.encoding)" }
        guard !options.planned else { return nil }   // allocate.bits checks its candidates' block sizes
        let rowLength = entry.shape.dimensions.last ?? 1
        guard rowLength % options.type.blockSize == 0 else {
            return "row length \(rowLength) is not a multiple of the \(options.type.name) block size \(options.type.blockSize)"
        }
        return nil
    }

    public func calibrationProblem(with entry: CheckpointManifest.Entry, statistics: CalibrationStatistics) -> String? {
        do {
            guard let weights = try statistics.activationSquares(for: entry.name) else { return nil }
            guard GGMLQuantization.importanceFits(weights.count, shape: entry.shape) else {
                return "\(statistics.path) has \(weights.count) importance weights for rows of \(entry.shape.dimensions.last ?? 1)"
            }
        } catch {
            return "\(error)"
        }
        return nil
    }

    /// The types whose blocks store a minimum (`x ≈ d·q − m`): 0 is generally not on their grid.
    public static let storesMinimum: Set<GGMLType> = [.q4_1, .q5_1, .q2_K, .q4_K, .q5_K]

    public func apply(to entry: inout TensorEntry, context: PassContext) throws {
        guard case .dense(let tensor) = entry.payload else {
            throw PassError(pass: Self.name, tensor: entry.name, message: "expects a dense float tensor, found \(entry.encodingName)")
        }
        var type = options.type
        if options.planned {
            guard case .ggml(let planned) = context.plan[entry.name] else {
                throw PassError(pass: Self.name, tensor: entry.name, message: "type=auto, but no allocate.bits target=ggml step planned a type for it")
            }
            type = planned
        }
        if entry.sparsity != nil, Self.storesMinimum.contains(type) {
            context.note?("warning: \(Self.name): tensor '\(entry.name)' was pruned, but \(type.name) stores a block minimum and does not keep zeros exactly; the report shows the sparsity that remains (Q4_0, Q5_0, Q8_0, Q3_K, Q6_K keep them)")
        }
        let importance = try context.calibration?.activationSquares(for: entry.name)
        entry.payload = .ggml(try GGMLQuantization.quantize(tensor, name: entry.name, to: type, importance: importance,
                                                            threadCount: context.threadCount))
    }
}
