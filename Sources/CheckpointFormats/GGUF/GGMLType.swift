/// A ggml tensor element type, as stored in the `ggml_type` field of a GGUF tensor info.
///
/// Only ids that may appear in files are listed (ids 4, 5, 31–33 and 36–38 were removed from the
/// format). Quantized types store `blockSize` elements in `bytesPerBlock` bytes; a row of `n`
/// elements therefore takes `n / blockSize * bytesPerBlock` bytes and `n` must be a multiple of
/// `blockSize`.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q5_0 = 6
    case q5_1 = 7
    case q8_0 = 8
    case q8_1 = 9
    case q2_K = 10
    case q3_K = 11
    case q4_K = 12
    case q5_K = 13
    case q6_K = 14
    case q8_K = 15
    case iq2_xxs = 16
    case iq2_xs = 17
    case iq3_xxs = 18
    case iq1_s = 19
    case iq4_nl = 20
    case iq3_s = 21
    case iq2_s = 22
    case iq4_xs = 23
    case i8 = 24
    case i16 = 25
    case i32 = 26
    case i64 = 27
    case f64 = 28
    case iq1_m = 29
    case bf16 = 30
    case tq1_0 = 34
    case tq2_0 = 35
    case mxfp4 = 39
    case nvfp4 = 40
    case q1_0 = 41
    case q2_0 = 42

    /// The type name as llama.cpp and gguf-py spell it (for example `"Q4_K"`, `"F32"`, `"IQ2_XXS"`).
    public var name: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q5_0: "Q5_0"
        case .q5_1: "Q5_1"
        case .q8_0: "Q8_0"
        case .q8_1: "Q8_1"
        case .q2_K: "Q2_K"
        case .q3_K: "Q3_K"
        case .q4_K: "Q4_K"
        case .q5_K: "Q5_K"
        case .q6_K: "Q6_K"
        case .q8_K: "Q8_K"
        case .iq2_xxs: "IQ2_XXS"
        case .iq2_xs: "IQ2_XS"
        case .iq3_xxs: "IQ3_XXS"
        case .iq1_s: "IQ1_S"
        case .iq4_nl: "IQ4_NL"
        case .iq3_s: "IQ3_S"
        case .iq2_s: "IQ2_S"
        case .iq4_xs: "IQ4_XS"
        case .i8: "I8"
        case .i16: "I16"
        case .i32: "I32"
        case .i64: "I64"
        case .f64: "F64"
        case .iq1_m: "IQ1_M"
        case .bf16: "BF16"
        case .tq1_0: "TQ1_0"
        case .tq2_0: "TQ2_0"
        case .mxfp4: "MXFP4"
        case .nvfp4: "NVFP4"
        case .q1_0: "Q1_0"
        case .q2_0: "Q2_0"
        }
    }

    /// Elements per block (1 for plain scalar types).
    public var blockSize: Int { layout.elements }

    /// Bytes per block (the element size for plain scalar types).
    public var bytesPerBlock: Int { layout.bytes }

    /// Bytes taken by a row of `elements` values, or `nil` when `elements` is negative, not a
    /// multiple of `blockSize`, or the byte count would overflow `Int`.
    public func rowByteCount(elements: Int) -> Int? {
        let (elementsPerBlock, bytes) = layout
        guard elements >= 0, elements % elementsPerBlock == 0 else { return nil }
        let (product, overflow) = (elements / elementsPerBlock).multipliedReportingOverflow(by: bytes)
        return overflow ? nil : product
    }

    /// The type with the given llama.cpp / gguf-py name (case-sensitive), if any.
    public init?(name: String) {
        guard let match = GGMLType.allCases.first(where: { $0.name == name }) else { return nil }
        self = match
    }

    private var layout: (elements: Int, bytes: Int) {
        switch self {
        case .f32: (1, 4)
        case .f16: (1, 2)
        case .q4_0: (32, 18)
        case .q4_1: (32, 20)
        case .q5_0: (32, 22)
        case .q5_1: (32, 24)
        case .q8_0: (32, 34)
        case .q8_1: (32, 36)
        case .q2_K: (256, 84)
        case .q3_K: (256, 110)
        case .q4_K: (256, 144)
        case .q5_K: (256, 176)
        case .q6_K: (256, 210)
        case .q8_K: (256, 292)
        case .iq2_xxs: (256, 66)
        case .iq2_xs: (256, 74)
        case .iq3_xxs: (256, 98)
        case .iq1_s: (256, 50)
        case .iq4_nl: (32, 18)
        case .iq3_s: (256, 110)
        case .iq2_s: (256, 82)
        case .iq4_xs: (256, 136)
        case .i8: (1, 1)
        case .i16: (1, 2)
        case .i32: (1, 4)
        case .i64: (1, 8)
        case .f64: (1, 8)
        case .iq1_m: (256, 56)
        case .bf16: (1, 2)
        case .tq1_0: (256, 54)
        case .tq2_0: (256, 66)
        case .mxfp4: (32, 17)
        case .nvfp4: (64, 36)
        case .q1_0: (128, 18)
        case .q2_0: (64, 18)
        }
    }
}
