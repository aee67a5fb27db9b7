/// Exact conversions between `Float` and the 16-bit float formats.
///
/// - IEEE half (F16): round to nearest, ties to even; overflow gives ±Inf, subnormals are kept,
///   NaN becomes the quiet NaN `0x7E00 | sign` (as ggml writes it).
/// - bfloat16 (BF16): the upper 16 bits of the f32 after rounding to nearest even:
///   `(bits + 0x7FFF + ((bits >> 16) & 1)) >> 16`; NaN becomes `(bits >> 16) | 0x40` (quiet).
/// Widening (F16/BF16 to `Float`) is exact.
public enum HalfPrecision {
    /// F32 to IEEE half bits, round half to even.
    @inlinable
    public static func halfBits(_ x: Float) -> UInt16 {
        if x.isNaN { return 0x7E00 | UInt16(truncatingIfNeeded: (x.bitPattern >> 16) & 0x8000) }
        return Float16(x).bitPattern
    }

    /// IEEE half bits to F32 (exact).
    @inlinable
    public static func float(halfBits bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

    /// F32 to bfloat16 bits, round half to even.
    @inlinable
    public static func bfloat16Bits(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        if b & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: (b >> 16) | 0x40) }
        return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }

    /// bfloat16 bits to F32 (exact).
    @inlinable
    public static func float(bfloat16Bits bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }
}
