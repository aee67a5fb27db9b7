// Numeric primitives shared by the ggml quantizers (formats.md §2.1).
//
// Every expression below is evaluated in binary32, left to right, with no FMA: Swift does not
// contract `a * b + c` unless asked to. Sums are sequential from index 0, as in the reference.

/// `nearest_int` from ggml-quants.c: add 1.5·2^23 and take the low mantissa bits. This is
/// round-half-to-even for |f| ≤ 4194303; outside that range it reproduces the reference's
/// (meaningless but deterministic) bits instead of trapping.
@inline(__always)
func nearestInt(_ f: Float) -> Int {
    let v = f + 12_582_912.0
    return Int(v.bitPattern & 0x7F_FFFF) - 0x40_0000
}

/// The x86-64 `cvttss2si` conversion: truncation toward zero, with NaN and out-of-range inputs
/// giving `Int32.min` (the "integer indefinite" value) instead of trapping.
@inline(__always)
func truncatingToInt32(_ v: Float) -> Int32 {
    (v >= -2_147_483_648.0 && v < 2_147_483_648.0) ? Int32(v) : Int32.min
}

/// `GGML_FP32_TO_FP16`: IEEE round-to-nearest-even (overflow to ±inf, subnormals kept); any NaN
/// becomes `0x7E00 | sign`.
///
/// Equal to `Float16(x).bitPattern` for every non-NaN `Float` (checked over all 2^32 bit patterns;
/// the tests re-check every rounding boundary). `Float16(_:)` is an out-of-line libcall
/// (`__truncsfhf2`, ~35 cycles) on x86-64 without F16C; this is ~3 cycles, which matters for the
/// legacy types (one or two conversions per 32 values). How it works (the classic branch-free
/// construction that ggml's own `ggml_compute_fp32_to_fp16` also uses): scaling |x| by 2^112
/// then 2^-110 turns values too large for fp16 into infinity; adding a power of two whose ulp
/// equals fp16's ulp at x's exponent (or fp16's subnormal ulp, for small x) makes the FPU's
/// round-to-nearest-even perform exactly fp16's rounding; the fp16 exponent and mantissa are then
/// read from the sum's bits.
@inline(__always)
func fp16Bits(_ x: Float) -> UInt16 {
    let w = x.bitPattern
    let twice = w &+ w  // exponent and mantissa, sign dropped
    let sign = UInt16(truncatingIfNeeded: w >> 16) & 0x8000
    if twice > 0xFF00_0000 { return sign | 0x7E00 }  // NaN
    var scaled = (abs(x) * Float(bitPattern: 0x7780_0000)) * Float(bitPattern: 0x0880_0000)
    var bias = twice & 0xFF00_0000
    if bias < 0x7100_0000 { bias = 0x7100_0000 }
    scaled = Float(bitPattern: (bias >> 1) &+ 0x0780_0000) + scaled
    let bits = scaled.bitPattern
    return sign | UInt16(truncatingIfNeeded: ((bits >> 13) & 0x7C00) &+ (bits & 0x0FFF))
}

/// `GGML_FP16_TO_FP32` (exact).
@inline(__always)
func fp16ToFloat(_ bits: UInt16) -> Float {
    Float(Float16(bitPattern: bits))
}

/// Round half away from zero (C `roundf`).
@inline(__always)
func roundHalfAway(_ x: Float) -> Float {
    x.rounded(.toNearestOrAwayFromZero)
}

extension UnsafeMutableRawPointer {
    @inline(__always)
    func storeFP16(_ value: Float, at offset: Int) {
        storeBytes(of: fp16Bits(value).littleEndian, toByteOffset: offset, as: UInt16.self)
    }

    @inline(__always)
    func storeByte(_ value: UInt8, at offset: Int) {
        storeBytes(of: value, toByteOffset: offset, as: UInt8.self)
    }
}

extension UnsafeRawPointer {
    @inline(__always)
    func loadFP16(at offset: Int) -> Float {
        fp16ToFloat(UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    @inline(__always)
    func byte(at offset: Int) -> UInt8 {
        load(fromByteOffset: offset, as: UInt8.self)
    }
}

// MARK: - K-quant 6-bit scale/min packing (Q4_K, Q5_K)

/// Packs eight 6-bit scales and mins into the 12-byte `scales` field of Q4_K/Q5_K.
@inline(__always)
func packScaleMinK4(_ ls: UnsafePointer<UInt8>, _ lm: UnsafePointer<UInt8>, into s: UnsafeMutablePointer<UInt8>) {
    for j in 0..<4 {
        s[j] = ls[j]
        s[j + 4] = lm[j]
    }
    for j in 4..<8 {
        s[j + 4] = (ls[j] & 0xF) | ((lm[j] & 0xF) << 4)
        s[j - 4] |= (ls[j] >> 4) << 6
        s[j] |= (lm[j] >> 4) << 6
    }
}

/// `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` from the 12-byte field.
@inline(__always)
func scaleMinK4(_ j: Int, _ q: UnsafePointer<UInt8>) -> (scale: UInt8, min: UInt8) {
    if j < 4 {
        return (q[j] & 63, q[j + 4] & 63)
    }
    return ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
}

/// Packs sixteen 6-bit Q3_K scale codes (0...63) into the 12-byte field.
@inline(__always)
func packScalesQ3K(_ codes: UnsafePointer<Int8>, into s: UnsafeMutablePointer<UInt8>) {
    for j in 0..<12 { s[j] = 0 }
    for j in 0..<16 {
        var l = UInt8(truncatingIfNeeded: codes[j])
        if j < 8 {
            s[j] = l & 0xF
        } else {
            s[j - 8] |= (l & 0xF) << 4
        }
        l >>= 4
        s[j % 4 + 8] |= l << UInt8(2 * (j / 4))
    }
}

/// Unpacks Q3_K scale `j` as the signed value `code - 32`.
@inline(__always)
func scaleQ3K(_ j: Int, _ s: UnsafePointer<UInt8>) -> Int {
    let low = j < 8 ? s[j] & 0xF : s[j - 8] >> 4
    let high = (s[8 + j % 4] >> UInt8(2 * (j / 4))) & 3
    return Int(low | (high << 4)) - 32
}

// MARK: - Importance weights

/// `Σ x²` over `n` values, summed sequentially from index 0.
@inline(__always)
func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var s: Float = 0
    for i in 0..<n { s += x[i] * x[i] }
    return s
}

/// The legacy `_impl` weights: `w_j = qw_j · sqrt(sigma2 + x_j²)`.
@inline(__always)
func importanceWeights(
    _ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, sigma2: Float, _ n: Int, into w: UnsafeMutablePointer<Float>
) {
    for j in 0..<n { w[j] = qw[j] * (sigma2 + x[j] * x[j]).squareRoot() }
}
