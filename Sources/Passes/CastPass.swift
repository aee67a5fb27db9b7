import TensorCore
import CheckpointFormats
import Recipes

/// `cast`: re-encodes the selected float tensors as F32, F16 or BF16 (round to nearest even).
///
/// ```
/// cast dtype=bf16 targets="*norm*"
/// ```
/// By default it selects every float tensor.
public struct CastPass: CompressionPass {
    public static let name = "cast"
    public static let summary = "cast float tensors to f32, f16 or bf16 (round to nearest even)"

    public struct Options: PassOptions {
        public var dtype: DType

        public init(reading reader: inout OptionReader) {
            let name = reader.choice("dtype", default: "bf16", from: ["f32", "f16", "bf16"], help: "target dtype")
            dtype = DType(userName: name) ?? .bf16
        }
    }

    public let options: Options
    public init(options: Options) { self.options = options }

    public static func selectsByDefault(name: String, rank: Int) -> Bool { true }

    public func problem(with entry: CheckpointManifest.Entry) -> String? {
        guard let dtype = entry.dtype, dtype.isConvertibleFloat else { return "expects a dense float tensor, found \(entry.encoding)" }
        return nil
    }

    public func apply(to entry: inout TensorEntry, context: PassContext) throws {
        guard case .dense(let tensor) = entry.payload else {
            throw PassError(pass: Self.name, tensor: entry.name, message: "expects a dense float tensor, found \(entry.encodingName)")
        }
        entry.payload = .dense(try tensor.converted(to: options.dtype))
    }
}
