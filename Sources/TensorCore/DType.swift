/// An element type as safetensors spells it.
///
/// Every dtype string of the safetensors reference reader is known here. Sub-byte types (`F4`, `F6_*`)
/// are packed: a tensor of `n` elements takes `n * bitsPerElement / 8` bytes and `n * bitsPerElement`
/// must be a multiple of 8. Types without a `Float` conversion are carried through as opaque bytes.
public enum DType: String, Sendable, CaseIterable, Hashable, CustomStringConvertible {
    case bool = "BOOL"
    case f4 = "F4"
    case f6E2M3 = "F6_E2M3"
    case f6E3M2 = "F6_E3M2"
    case u8 = "U8"
    case i8 = "I8"
    case f8E5M2 = "F8_E5M2"
    case f8E4M3 = "F8_E4M3"
    case f8E8M0 = "F8_E8M0"
    case f8E4M3FNUZ = "F8_E4M3FNUZ"
    case f8E5M2FNUZ = "F8_E5M2FNUZ"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case c64 = "C64"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// The safetensors spelling, e.g. `"BF16"`.
    public var description: String { rawValue }

    /// Storage bits of one element.
    public var bitsPerElement: Int {
        switch self {
        case .f4: 4
        case .f6E2M3, .f6E3M2: 6
        case .bool, .u8, .i8, .f8E5M2, .f8E4M3, .f8E8M0, .f8E4M3FNUZ, .f8E5M2FNUZ: 8
        case .i16, .u16, .f16, .bf16: 16
        case .i32, .u32, .f32: 32
        case .c64, .f64, .i64, .u64: 64
        }
    }

    /// Position in the safetensors crate's declaration order; its writer sorts tensors by this, descending.
    public var referenceRank: Int { DType.allCases.firstIndex(of: self)! }

    /// True for the types this module converts exactly to and from `Float`
    /// (F16, BF16, F32, F64, F8_E4M3, F8_E5M2).
    public var isConvertibleFloat: Bool {
        switch self {
        case .f16, .bf16, .f32, .f64, .f8E4M3, .f8E5M2: true
        default: false
        }
    }

    /// Byte count of `elementCount` elements, or nil when it overflows or, for sub-byte types,
    /// when `elementCount * bitsPerElement` is not a multiple of 8.
    public func byteCount(elementCount: Int) -> Int? {
        let (bits, overflow) = elementCount.multipliedReportingOverflow(by: bitsPerElement)
        guard !overflow, bits % 8 == 0 else { return nil }
        return bits / 8
    }

    /// Parses a user-facing name such as `f32`, `bf16` or `F8_E4M3` (case-insensitive).
    public init?(userName: String) {
        guard let match = DType.allCases.first(where: { $0.rawValue.lowercased() == userName.lowercased() })
        else { return nil }
        self = match
    }
}
