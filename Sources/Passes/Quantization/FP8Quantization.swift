import TensorCore
import CheckpointFormats
import Recipes

/// `quantize.fp8`: FP8 weights with a per-channel or per-tensor F32 scale (see `FP8Quantizer`).
///
/// ```
/// quantize.fp8 format=e4m3 granularity=channel
/// ```
public struct FP8Quantization: CompressionPass {
    public static let name = "quantize.fp8"
    public static let summary = "FP8 weights (e4m3 or e5m2) with a per-channel or per-tensor scale"

    public struct Options: PassOptions {
        public var quantizer: FP8Quantizer

        public init(reading reader: inout OptionReader) {
            let format = reader.choice("format", default: "e4m3", from: FP8Format.Kind.allCases.map(\.rawValue), help: "FP8 encoding")
            let granularity = reader.choice("granularity", default: "channel", from: ["channel", "tensor"], help: "one scale per row or per tensor")
            quantizer = FP8Quantizer(kind: FP8Format.Kind(rawValue: format)!, perChannel: granularity == "channel")
        }
    }

    public let options: Options
    public init(options: Options) { self.options = options }

    public static func selectsByDefault(name: String, rank: Int) -> Bool { isWeightMatrix(name: name, rank: rank) }

    public func problem(with entry: CheckpointManifest.Entry) -> String? {
        guard let dtype = entry.dtype, dtype.isConvertibleFloat else { return "expects a dense float tensor, found \(entry.encoding)" }
        return nil
    }

    public func apply(to entry: inout TensorEntry, context: PassContext) throws {
        let values = try Self.finiteValues(of: entry)
        entry.payload = .quantized(options.quantizer.quantize(values, shape: entry.shape))
    }
}
