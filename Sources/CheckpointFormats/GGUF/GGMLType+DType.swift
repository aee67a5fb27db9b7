import TensorCore

extension GGMLType {
    /// The plain (non-block) dtype this ggml type stores, if any: F32, F16, BF16, F64, I8, I16, I32, I64.
    public var denseDType: DType? {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .f64: .f64
        case .i8: .i8
        case .i16: .i16
        case .i32: .i32
        case .i64: .i64
        default: nil
        }
    }

    /// The ggml type storing a dense dtype, if GGUF can hold it.
    public init?(denseDType dtype: DType) {
        guard let match = GGMLType.allCases.first(where: { $0.denseDType == dtype }) else { return nil }
        self = match
    }

    /// True for block-quantized types (block size > 1).
    public var isBlockQuantized: Bool { blockSize > 1 }

    /// ids that older files used and the format has since removed (the C reader rejects them).
    public static let removedIDs: Set<UInt32> = [4, 5, 31, 32, 33, 36, 37, 38]
}
