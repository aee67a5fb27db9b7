import TensorCore
import CheckpointFormats

/// What planning decided for each tensor: the setting that the later `quantize.int bits=auto` or
/// `quantize.ggml type=auto` step applies to it (from `allocate.bits`), or the score cut-off of a
/// global pruning step (`prune.magnitude scope=global`, used by the same step), or the head count
/// of a llama.cpp Q/K tensor a `merge.lora` step updates.
///
/// Invariant: a setting is stored under the tensor's name by exactly one planning step, before any
/// step that consumes it runs (the recipe binder checks the order, and that pruning comes before
/// allocation).
public struct AllocationPlan: Sendable, Equatable {
    /// One tensor's planned setting.
    public enum Setting: Sendable, Equatable, CustomStringConvertible {
        /// One integer width for the whole tensor.
        case bits(Int)
        /// One integer width per input column (0 = the column is dropped), for `granularity=channel`.
        case columnBits([UInt8])
        /// A ggml block type.
        case ggml(GGMLType)
        /// Prune the weights whose score key (`SmallestScores.key`) is below `key`, plus the first
        /// `ties` (in element order) whose key equals it.
        case pruneBelow(key: UInt32, ties: Int)
        /// `merge.lora` into a llama.cpp GGUF: the tensor's rows are in llama.cpp's Q/K order for
        /// this many heads (see `LoRADelta.permuteRows`).
        case permutedRows(heads: Int)
        /// `share.rps`: the tensor's view into the step's shared slot array.
        case shared(SharedTensor)

        public var description: String {
            switch self {
            case .bits(let b): "int\(b)"
            case .columnBits(let widths):
                widths.isEmpty ? "columns" : "columns \(widths.min()!)-\(widths.max()!) (mean \(String(format: "%.3f", Double(widths.reduce(0) { $0 + Int($1) }) / Double(widths.count))))"
            case .ggml(let type): type.name
            case .pruneBelow(let key, let ties): "prune below \(Float(bitPattern: key)) (+\(ties) ties)"
            case .permutedRows(let heads): "rows permuted for \(heads) heads"
            case .shared(let t): t.encodingName
            }
        }
    }

    public private(set) var settings: [String: Setting] = [:]

    public init() {}

    public subscript(name: String) -> Setting? { settings[name] }

    public mutating func set(_ setting: Setting, for name: String) { settings[name] = setting }
}
