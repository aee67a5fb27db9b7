import TensorCore
import CheckpointFormats
import Recipes

/// `quantize.nf4`: 4-bit NormalFloat weights in blocks (QLoRA / bitsandbytes `quantize_4bit`, see
/// `NF4Quantizer` for the formulas), optionally with double quantization of the block scales.
///
/// ```
/// quantize.nf4 block=64 double_quant=true ignore="lm_head.weight"
/// ```
/// Blocks are `block` consecutive values of a row (bitsandbytes flattens the tensor; with rows a
/// multiple of the block size the blocks are the same), so every selected row length must be a
/// multiple of `block`. `x̂ = NF4[q] · absmax_block`; NF4 holds an exact 0, so zeros stay zero.
/// Storage: 4.5 bits per weight at block 64, ≈ 4.127 with double quantization.
public struct NF4Quantization: CompressionPass {
    public static let name = "quantize.nf4"
    public static let summary = "NF4 (QLoRA) 4-bit blockwise weights, optional double quantization of the scales"

    public struct Options: PassOptions {
        public var quantizer: NF4Quantizer

        public init(reading reader: inout OptionReader) {
            let block = reader.choice("block", default: "64", from: ["32", "64", "128", "256", "512", "1024", "2048", "4096"],
                                      help: "values per absmax block")
            let doubleQuant = reader.bool("double_quant", default: false,
                                          help: "quantize the block scales to 8 bits in blocks of 256 (QLoRA)")
            quantizer = NF4Quantizer(blockSize: Int(block) ?? 64, doubleQuantization: doubleQuant)
        }
    }

    public let options: Options
    public init(options: Options) { self.options = options }

    public static func selectsByDefault(name: String, rank: Int) -> Bool { isWeightMatrix(name: name, rank: rank) }

    public func problem(with entry: CheckpointManifest.Entry) -> String? {
        guard let dtype = entry.dtype, dtype.isConvertibleFloat else { return "expects a dense float tensor, found \(entry.encoding)" }
        let block = options.quantizer.blockSize
        guard entry.shape.columnCount % block == 0 else {
            return "row length \(entry.shape.columnCount) is not a multiple of the NF4 block size \(block)"
        }
        return nil
    }

    public func apply(to entry: inout TensorEntry, context: PassContext) throws {
        let values = try Self.finiteValues(of: entry)
        entry.payload = .quantized(options.quantizer.quantize(values, shape: entry.shape).quantizedTensor)
    }
}
