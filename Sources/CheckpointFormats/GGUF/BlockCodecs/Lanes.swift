// Lane-parallel arithmetic for the scale searches.
//
// A "lane" is one independent sub-block (or block). Each lane runs exactly the scalar reference
// sequence: the same IEEE operations in the same order, sums accumulated from index 0 upwards,
// and every C `if` turned into a compare + select with the same comparison (so NaN behaves as in
// the reference). Vectorising *across* independent lanes never reorders a sum.
//
// Codegen notes (x86-64 baseline, SSE2):
// * Only compare/select, bit casts and the add-magic rounding are used: on SIMD8/SIMD16 `Float`
//   vectors, `.rounded()`, `pointwiseMin/Max`, `clamped`, `squareRoot()` and float<->int
//   conversions are scalarised (out-of-line per-lane calls).
// * Comparisons and selects go through the small concrete helpers below. The generic `SIMD`
//   comparison operators and `replace(with:where:)`, reached from generic code, are per-lane loops
//   that LLVM leaves scalar in larger functions; hand-written `&`/`|` selects on bit-cast masks
//   also fare badly for 8-lane masks.
// * SIMD8 (two SSE registers) is the lane width: SIMD16 spills on SSE2's sixteen registers.

/// Eight `Float` lanes.
typealias V8 = SIMD8<Float>

extension SIMD8 where Scalar == Float {
    typealias Bits = SIMD8<Int32>
    typealias Mask = SIMDMask<Bits>

    @inline(__always) static func lt(_ a: Self, _ b: Self) -> Mask { a .< b }
    @inline(__always) static func gt(_ a: Self, _ b: Self) -> Mask { a .> b }
    @inline(__always) static func le(_ a: Self, _ b: Self) -> Mask { a .<= b }
    @inline(__always) static func eq(_ a: Self, _ b: Self) -> Mask { a .== b }
    @inline(__always) static func ne(_ a: Self, _ b: Self) -> Mask { a .!= b }
    @inline(__always) static func and(_ a: Mask, _ b: Mask) -> Mask { a .& b }
    @inline(__always) static func or(_ a: Mask, _ b: Mask) -> Mask { a .| b }
    @inline(__always) static func not(_ a: Mask) -> Mask { .!a }

    /// `m ? a : b` per lane.
    @inline(__always) static func select(_ m: Mask, _ a: Self, _ b: Self) -> Self {
        var r = b
        r.replace(with: a, where: m)
        return r
    }

    /// Replaces the lanes where `m` is set with those of `other`.
    @inline(__always) mutating func replace(lanes other: Self, where m: Mask) { self = Self.select(m, other, self) }

    /// True when some lane of `m` is set (an OR-reduction of the mask's sign bits).
    @inline(__always) static func anyTrue(_ m: Mask) -> Bool {
        let s = unsafeBitCast(m, to: Bits.self)
        let a = s.lowHalf | s.highHalf
        let b = a.lowHalf | a.highHalf
        return (b.x | b.y) < 0
    }

    @inline(__always) var bits: Bits { unsafeBitCast(self, to: Bits.self) }
    @inline(__always) init(bits: Bits) { self = unsafeBitCast(bits, to: Self.self) }

    /// `fabsf` per lane (clears the sign bit).
    @inline(__always) var magnitude: Self { Self(bits: bits & Bits(repeating: 0x7FFF_FFFF)) }

    /// C's unary minus per lane: flips the sign bit (so `-(+0)` is `-0`). The SIMD prefix `-` is
    /// `0 - x`, which maps `+0` to `+0`.
    @inline(__always) var negated: Self { Self(bits: bits ^ Bits(repeating: Int32.min)) }

    /// True when every lane is finite.
    @inline(__always) var allFinite: Bool { !Self.anyTrue(Self.ne(self - self, Self.zero)) }

    /// `(float)MAX(lo, MIN(hi, nearest_int(self)))` per lane, exactly as the reference computes it
    /// (including its meaningless-but-deterministic results for |v| ≥ 2^22, ±inf and NaN).
    @inline(__always) func roundedClamped(_ lo: Int32, _ hi: Int32) -> Self {
        var t = unsafeBitCast(self + Self(repeating: roundingMagic), to: Bits.self) & Bits(repeating: 0x7F_FFFF)
        let tlo = Bits(repeating: 0x40_0000 &+ lo)
        let thi = Bits(repeating: 0x40_0000 &+ hi)
        t.replace(with: thi, where: t .> thi)
        t.replace(with: tlo, where: t .< tlo)
        // 0x4B000000 | t is the float 2^23 + t; subtracting 1.5·2^23 leaves t - 2^22 exactly.
        return Self(bits: t | Bits(repeating: 0x4B00_0000)) - Self(repeating: roundingMagic)
    }

    /// `roundedClamped` through float rounding and float min/max when `inRange` (every lane
    /// satisfies |v| < 2^22 and is not NaN, where both give the same result): about a third of the
    /// instructions, as SSE2 has no 32-bit integer min/max. Else the exact integer path.
    @inline(__always) func roundedClamped(_ lo: Int32, _ hi: Int32, inRange: Bool) -> Self {
        guard inRange else { return roundedClamped(lo, hi) }
        var r = (self + Self(repeating: roundingMagic)) - Self(repeating: roundingMagic)
        r.replace(with: Self(repeating: Float(hi)), where: r .> Self(repeating: Float(hi)))
        r.replace(with: Self(repeating: Float(lo)), where: r .< Self(repeating: Float(lo)))
        return r
    }

    /// `(float)(v > 0 ? nearest_int(MIN(v, hi)) : 0)` per lane (`make_qkx3_quants`' guarded
    /// rounding; always in range).
    @inline(__always) func guardedRounded(_ hi: Float) -> Self {
        let h = Self(repeating: hi)
        let v = Self.select(Self.lt(self, h), self, h)
        let r = (v + Self(repeating: roundingMagic)) - Self(repeating: roundingMagic)
        return Self.select(Self.gt(self, Self.zero), r, Self.zero)
    }
}

/// 1.5·2^23: adding it rounds a float with |x| < 2^22 to an integer (half to even).
let roundingMagic: Float = 12_582_912.0

/// Transposes up to eight runs of `n` consecutive values (run `k` starts at `x + k·stride`) into
/// `n` vectors whose lane `k` is run `k`. Lanes at or beyond `count` are zero.
@inline(__always)
func transpose(
    _ x: UnsafePointer<Float>, stride: Int, n: Int, count: Int = 8, into t: UnsafeMutablePointer<V8>
) {
    // Plain 4-byte stores: assigning `t[i][k]` would load, patch and store a whole vector per
    // element (store-forwarding stalls).
    let raw = UnsafeMutableRawPointer(t)
    if count < 8 { for i in 0..<n { t[i] = V8.zero } }
    for k in 0..<Swift.min(count, 8) {
        let run = x + k * stride
        for i in 0..<n { raw.storeBytes(of: run[i], toByteOffset: 4 * (8 * i + k), as: Float.self) }
    }
}

/// Writes lane `k` of `codes[i]` (small non-negative integers held as floats) to
/// `out[k·stride + i]` as a byte, for the first `count` lanes.
@inline(__always)
func untransposeCodes(
    _ codes: UnsafePointer<V8>, n: Int, stride: Int, count: Int = 8, into out: UnsafeMutablePointer<UInt8>
) {
    for i in 0..<n {
        let b = (codes[i] + V8(repeating: roundingMagic)).bits
        for k in 0..<Swift.min(count, 8) {
            out[k * stride + i] = UInt8(truncatingIfNeeded: b[k])
        }
    }
}
