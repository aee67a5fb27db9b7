/// The two OCP 8-bit float formats, with saturating round-to-nearest-even encoding.
///
/// | | E4M3 (`F8_E4M3`, "E4M3FN") | E5M2 (`F8_E5M2`) |
/// |---|---|---|
/// | bias | 7 | 15 |
/// | max finite | 448 (`0x7E`) | 57344 (`0x7B`) |
/// | min subnormal | 2⁻⁹ | 2⁻¹⁶ |
/// | Inf | none | `0x7C` / `0xFC` |
/// | NaN | `0x7F` / `0xFF` only | exponent 11111, mantissa ≠ 0 |
///
/// Encoding rounds the mantissa to nearest even and **saturates** finite values beyond ±max to ±max
/// (so 464 → 448 in E4M3 and 61440 → 57344 in E5M2, where a non-saturating cast would give NaN/Inf).
/// ±Inf becomes ±Inf in E5M2 and ±448 in E4M3 (which has no Inf); NaN becomes `0x7F | sign`.
/// Decoding is exact.
public struct FP8Format: Sendable {
    /// The two formats by name.
    public enum Kind: String, Sendable, CaseIterable, Equatable {
        case e4m3, e5m2

        public var format: FP8Format { self == .e4m3 ? .e4m3 : .e5m2 }
        public var dtype: DType { self == .e4m3 ? .f8E4M3 : .f8E5M2 }
    }

    public let exponentBits: Int
    public let mantissaBits: Int
    public let bias: Int
    public let maxFinite: Float
    /// Largest finite code without the sign bit.
    public let maxCode: UInt8
    public let hasInfinity: Bool
    private let decodeTable: [Float]

    public static let e4m3 = FP8Format(exponentBits: 4, mantissaBits: 3, bias: 7, maxCode: 0x7E, hasInfinity: false)
    public static let e5m2 = FP8Format(exponentBits: 5, mantissaBits: 2, bias: 15, maxCode: 0x7B, hasInfinity: true)

    private init(exponentBits: Int, mantissaBits: Int, bias: Int, maxCode: UInt8, hasInfinity: Bool) {
        self.exponentBits = exponentBits
        self.mantissaBits = mantissaBits
        self.bias = bias
        self.maxCode = maxCode
        self.hasInfinity = hasInfinity
        var table = [Float](repeating: 0, count: 256)
        for code in 0..<256 {
            table[code] = FP8Format.decodeSlow(UInt8(code), e: exponentBits, m: mantissaBits, bias: bias, ieee: hasInfinity)
        }
        decodeTable = table
        maxFinite = table[Int(maxCode)]
    }

    private static func decodeSlow(_ code: UInt8, e: Int, m: Int, bias: Int, ieee: Bool) -> Float {
        let negative = code & 0x80 != 0
        let exponentField = Int(code >> UInt8(m)) & ((1 << e) - 1)
        let mantissa = Int(code) & ((1 << m) - 1)
        let allOnes = (1 << e) - 1
        var value: Float
        if ieee && exponentField == allOnes {
            value = mantissa == 0 ? .infinity : .nan
        } else if !ieee && exponentField == allOnes && mantissa == (1 << m) - 1 {
            value = .nan
        } else if exponentField == 0 {
            value = Float(mantissa) * Float(sign: .plus, exponent: 1 - bias - m, significand: 1)
        } else {
            value = (1 + Float(mantissa) / Float(1 << m)) * Float(sign: .plus, exponent: exponentField - bias, significand: 1)
        }
        return negative ? -value : value
    }

    /// The exact value of `code`.
    @inlinable
    public func decode(_ code: UInt8) -> Float { decodeTableValue(code) }

    @usableFromInline
    func decodeTableValue(_ code: UInt8) -> Float { decodeTable[Int(code)] }

    /// Saturating round-to-nearest-even encoding of `x`.
    public func encode(_ x: Float) -> UInt8 {
        let sign = UInt8(truncatingIfNeeded: (x.bitPattern >> 24) & 0x80)
        if x.isNaN { return sign | 0x7F }
        let a = x.magnitude
        if a.isInfinite && hasInfinity { return sign | (maxCode + 1) }
        if a >= maxFinite { return sign | maxCode }
        let minNormalExponent = 1 - bias
        if a < Float(sign: .plus, exponent: minNormalExponent, significand: 1) {
            // Subnormal: count multiples of the smallest subnormal (exact scaling by a power of two).
            let k = (a * Float(sign: .plus, exponent: bias - 1 + mantissaBits, significand: 1)).rounded(.toNearestOrEven)
            return sign | UInt8(k)
        }
        let bits = a.bitPattern
        let shift = UInt32(23 - mantissaBits)
        let rounded = (bits &+ ((1 << (shift - 1)) - 1) &+ ((bits >> shift) & 1)) >> shift
        let code = rounded - (UInt32(127 - bias) << UInt32(mantissaBits))
        return sign | UInt8(min(code, UInt32(maxCode)))
    }
}
