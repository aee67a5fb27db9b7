import CheckpointFormats

/// What a planning step (`allocate.bits`) decided for each tensor it selected: the setting that the
/// later `quantize.int bits=auto` or `quantize.ggml type=auto` step applies to it.
///
/// Invariant: a setting is stored under the tensor's name by exactly one planning step, before any
/// step that consumes it runs (the recipe binder checks the order).
public struct AllocationPlan: Sendable, Equatable {
    /// One tensor's planned setting.
    public enum Setting: Sendable, Equatable, CustomStringConvertible {
        /// One integer width for the whole tensor.
        case bits(Int)
        /// One integer width per input column (0 = the column is dropped), for `granularity=channel`.
        case columnBits([UInt8])
        /// A ggml block type.
        case ggml(GGMLType)

        public var description: String {
            switch self {
            case .bits(let b): "int\(b)"
            case .columnBits(let widths):
                widths.isEmpty ? "columns" : "columns \(widths.min()!)-\(widths.max()!) (mean \(String(format: "%.3f", Double(widths.reduce(0) { $0 + Int($1) }) / Double(widths.count))))"
            case .ggml(let type): type.name
            }
        }
    }

    public private(set) var settings: [String: Setting] = [:]

    public init() {}

    public subscript(name: String) -> Setting? { settings[name] }

    public mutating func set(_ setting: Setting, for name: String) { settings[name] = setting }
}
