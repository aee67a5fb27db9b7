import TensorCore
import CheckpointFormats
import Recipes

/// `quantize.int`: uniform integer post-training quantization of weight matrices (see
/// `IntegerQuantizer` for the formulas).
///
/// ```
/// quantize.int bits=4 granularity=group:128 symmetric=true clipping=mse ignore="lm_head.weight"
/// ```
/// Options: `bits` 2–8; `granularity` tensor | channel | group:N (N divides every selected row);
/// `symmetric`; `clipping` minmax | mse | percentile:P. Already-zero weights stay exactly zero.
/// Memory: the codes (one byte per weight); F16/BF16 inputs also take one float copy of the tensor.
public struct IntegerQuantization: CompressionPass {
    public static let name = "quantize.int"
    public static let summary = "integer PTQ (2-8 bits), symmetric or asymmetric, per tensor/channel/group, minmax/mse/percentile clipping"

    public struct Options: PassOptions {
        public var quantizer: IntegerQuantizer

        public init(reading reader: inout OptionReader) {
            let bits = reader.int("bits", default: 8, in: 2...8, help: "bit width of the codes")
            let symmetric = reader.bool("symmetric", default: true, help: "signed grid around 0 (else an integer zero point)")
            let granularity = IntegerQuantization.granularity(reader.text("granularity", help: "tensor | channel | group:N (default channel)"), reader: &reader)
            let clipping = IntegerQuantization.clipping(reader.text("clipping", help: "minmax | mse | percentile:P (default minmax)"), reader: &reader)
            quantizer = IntegerQuantizer(bits: bits, symmetric: symmetric, granularity: granularity, clipping: clipping)
        }
    }

    public let options: Options
    public init(options: Options) { self.options = options }

    public static func selectsByDefault(name: String, rank: Int) -> Bool { isWeightMatrix(name: name, rank: rank) }

    public func problem(with entry: CheckpointManifest.Entry) -> String? {
        guard let dtype = entry.dtype, dtype.isConvertibleFloat else { return "expects a dense float tensor, found \(entry.encoding)" }
        return options.quantizer.check(shape: entry.shape)
    }

    /// F32 tensors are quantized straight from their bytes (the memory map); other float dtypes are
    /// decoded to Float first. The scan for NaN/Inf is part of the quantizer's range pass.
    public func apply(to entry: inout TensorEntry, context: PassContext) throws {
        guard case .dense(let tensor) = entry.payload, tensor.dtype.isConvertibleFloat else {
            _ = try Self.finiteValues(of: entry)   // throws "expects a dense float tensor"
            return
        }
        let quantizer = options.quantizer, shape = entry.shape, threads = context.threadCount
        let quantized = tensor.dtype == .f32
            ? tensor.storage.withUnsafeBytes { quantizer.quantize(float32: $0, shape: shape, threadCount: threads) }
            : try tensor.floats().withUnsafeBytes { quantizer.quantize(float32: $0, shape: shape, threadCount: threads) }
        guard let quantized else {
            _ = try Self.finiteValues(of: entry)   // throws, naming the first NaN or Inf
            preconditionFailure("quantize.int: a non-finite value was reported but not found")
        }
        entry.payload = .quantized(quantized)
    }

    static func granularity(_ text: String?, reader: inout OptionReader) -> QuantizedTensor.Granularity {
        guard let text else { return .channel }
        guard let granularity = QuantizedTensor.Granularity(text) else {
            reader.report("granularity", "'\(text)' is not tensor, channel or group:N")
            return .channel
        }
        return granularity
    }

    static func clipping(_ text: String?, reader: inout OptionReader) -> IntegerQuantizer.Clipping {
        guard let text else { return .minMax }
        switch text {
        case "minmax": return .minMax
        case "mse": return .defaultMSE
        default:
            if text.hasPrefix("percentile:"), let p = Double(text.dropFirst(11)), p > 50, p <= 100 { return .percentile(p) }
            reader.report("clipping", "'\(text)' is not minmax, mse or percentile:P (50 < P ≤ 100)")
            return .minMax
        }
    }
}
