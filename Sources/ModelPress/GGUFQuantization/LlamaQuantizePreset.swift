import CheckpointFormats

/// What `convert --type` asks for: one ggml type for every quantizable tensor (llama-quantize
/// `--pure`), or a llama-quantize preset with its per-tensor mixture rules.
public enum QuantizationTarget: Sendable, Equatable, CustomStringConvertible {
    case pure(GGMLType)
    case preset(LlamaQuantizePreset)

    /// Parses `Q4_K`, `q8_0`, `F16` (types) or `Q4_K_M`, `Q5_K_M`, `Q3_K_M` (presets), case-insensitively.
    /// `Q6_K` and `Q8_0` name both a type and a preset; the two give the same tensors except that a preset
    /// also sets `general.file_type` to the preset's id (which `.pure` does too), so they parse as types.
    public init?(_ text: String) {
        let upper = text.uppercased()
        if let preset = LlamaQuantizePreset(rawValue: upper), GGMLType(name: upper) == nil {
            self = .preset(preset)
        } else if let type = GGMLType(name: upper), QuantizationTarget.supportedTypes.contains(type) {
            self = .pure(type)
        } else {
            return nil
        }
    }

    /// Types `convert --type` can produce.
    public static let supportedTypes: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    /// The llama `general.file_type` (ftype) id written to the output.
    public var fileType: UInt32 {
        switch self {
        case .preset(let p): p.fileType
        case .pure(let t): LlamaQuantizePreset.fileType(forPure: t)
        }
    }

    public var baseType: GGMLType {
        switch self {
        case .preset(let p): p.baseType
        case .pure(let t): t
        }
    }

    public var description: String {
        switch self {
        case .preset(let p): p.rawValue
        case .pure(let t): t.name
        }
    }
}

/// The llama-quantize presets whose mixture rules ModelPress implements (formats.md §3.2, §3.4).
public enum LlamaQuantizePreset: String, Sendable, CaseIterable {
    case q3_K_M = "Q3_K_M"
    case q4_K_M = "Q4_K_M"
    case q5_K_M = "Q5_K_M"

    public var baseType: GGMLType {
        switch self {
        case .q3_K_M: .q3_K
        case .q4_K_M: .q4_K
        case .q5_K_M: .q5_K
        }
    }

    /// `enum llama_ftype` ids.
    public var fileType: UInt32 {
        switch self {
        case .q3_K_M: 12
        case .q4_K_M: 15
        case .q5_K_M: 17
        }
    }

    /// The ftype llama-quantize writes when every quantizable tensor gets `type`.
    static func fileType(forPure type: GGMLType) -> UInt32 {
        switch type {
        case .f32: 0
        case .f16: 1
        case .q4_0: 2
        case .q4_1: 3
        case .q8_0: 7
        case .q5_0: 8
        case .q5_1: 9
        case .q2_K: 10
        case .q3_K: 12
        case .q4_K: 15
        case .q5_K: 17
        case .q6_K: 18
        case .bf16: 32
        default: 0
        }
    }
}
