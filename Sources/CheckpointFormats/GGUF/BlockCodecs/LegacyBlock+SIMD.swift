// Vectorised `quantize_row_*_ref` for Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1. A block of 32 is eight
// SIMD4 vectors (one SSE register each: SIMD4 selects compile to maxps/minps/and/or, wider
// vectors often do not). Every per-element operation is the reference's, in binary32.
//
// The block-wide max/min searches become vector reductions. For finite values these are
// order-independent except for which of several equal candidates is kept, which only matters
// for ±0 and for Q4_0/Q5_0's sign of the largest magnitude when +a and -a both occur; those cases,
// non-finite inputs and non-finite inverse scales take the scalar path. Output is always the
// reference's.

typealias F4 = SIMD4<Float>
typealias I4 = SIMD4<Int32>

@inline(__always) func vmax(_ a: F4, _ b: F4) -> F4 {
    var r = b
    r.replace(with: a, where: a .> b)
    return r
}

@inline(__always) func vmin(_ a: F4, _ b: F4) -> F4 {
    var r = b
    r.replace(with: a, where: a .< b)
    return r
}

@inline(__always) func bitsOf(_ a: F4) -> I4 { unsafeBitCast(a, to: I4.self) }
@inline(__always) func floatOf(_ a: I4) -> F4 { unsafeBitCast(a, to: F4.self) }

/// Element `4k..<4k+4` of a block.
@inline(__always) func load4(_ x: UnsafePointer<Float>, _ k: Int) -> F4 {
    UnsafeRawPointer(x).loadUnaligned(fromByteOffset: 16 * k, as: F4.self)
}

/// `floor` for values in [0, 2^22) (the reference truncates values that are ≥ 0 here).
@inline(__always) func floorNonNegative(_ v: F4) -> F4 {
    let r = (v + F4(repeating: roundingMagic)) - F4(repeating: roundingMagic)
    return r - floatOf(unsafeBitCast(r .> v, to: I4.self) & bitsOf(F4(repeating: 1)))
}

/// `roundf` (half away from zero) for |v| < 2^22.
@inline(__always) func roundHalfAway(_ v: F4) -> F4 {
    let a = floatOf(bitsOf(v) & I4(repeating: 0x7FFF_FFFF))
    var r = (a + F4(repeating: roundingMagic)) - F4(repeating: roundingMagic)
    r = r + floatOf(unsafeBitCast(a - r .== F4(repeating: 0.5), to: I4.self) & bitsOf(F4(repeating: 1)))
    return floatOf(bitsOf(r) | (bitsOf(v) & I4(repeating: Int32.min)))
}

/// Integer-valued floats in [-2^22, 2^22) as `Int32` lanes.
@inline(__always) func integers(_ v: F4) -> I4 {
    (bitsOf(v + F4(repeating: roundingMagic)) & I4(repeating: 0x7F_FFFF)) &- I4(repeating: 0x40_0000)
}

/// The 32 values of a block as eight vectors in memory order (`raw.k` holds elements `4k..<4k+4`).
struct Block32 {
    var raw: (F4, F4, F4, F4, F4, F4, F4, F4)

    @inline(__always) init(_ x: UnsafePointer<Float>) {
        raw = (load4(x, 0), load4(x, 1), load4(x, 2), load4(x, 3), load4(x, 4), load4(x, 5), load4(x, 6), load4(x, 7))
    }

    @inline(__always) subscript(k: Int) -> F4 {
        switch k {
        case 0: raw.0
        case 1: raw.1
        case 2: raw.2
        case 3: raw.3
        case 4: raw.4
        case 5: raw.5
        case 6: raw.6
        default: raw.7
        }
    }
}

/// The low bytes of 16 `Int32` lanes (`a`, `b`, `c`, `d` in order) as 16 bytes. Out of line on
/// purpose: inside it the truncating conversion inlines to two SSE2 packs, while inlined into a
/// large caller it becomes a call to the unspecialised-looking generic anyway (or 24 shuffles if
/// written as a transpose), and a call with four vector arguments is cheaper than either.
@inline(never)
func packLowBytes(_ a: I4, _ b: I4, _ c: I4, _ d: I4) -> SIMD16<UInt8> {
    SIMD16<UInt8>(truncatingIfNeeded: SIMD16<Int32>(lowHalf: SIMD8(lowHalf: a, highHalf: b), highHalf: SIMD8(lowHalf: c, highHalf: d)))
}

/// Stores the low bytes of four `I4` vectors (16 lanes, in order) at `offset`.
@inline(__always)
func storeBytes(_ a: I4, _ b: I4, _ c: I4, _ d: I4, _ y: UnsafeMutableRawPointer, at offset: Int) {
    y.storeBytes(of: packLowBytes(a, b, c, d), toByteOffset: offset, as: SIMD16<UInt8>.self)
}

/// Block statistics: max, min and whether every value is finite. The reductions are trees (depth
/// 3, not 7): a block's work is one long dependency chain, so latency is what limits speed.
@inline(__always)
func blockRange(_ blk: Block32) -> (max: Float, min: Float, finite: Bool) {
    let v = blk.raw
    let mx = vmax(vmax(vmax(v.0, v.1), vmax(v.2, v.3)), vmax(vmax(v.4, v.5), vmax(v.6, v.7)))
    let mn = vmin(vmin(vmin(v.0, v.1), vmin(v.2, v.3)), vmin(vmin(v.4, v.5), vmin(v.6, v.7)))
    // The sum is NaN if any value is NaN (or both infinities occur); infinities show in max/min.
    let sum = ((v.0 + v.1) + (v.2 + v.3)) + ((v.4 + v.5) + (v.6 + v.7))
    let mx2 = vmax(mx, F4(mx.z, mx.w, mx.x, mx.y))
    let mn2 = vmin(mn, F4(mn.z, mn.w, mn.x, mn.y))
    let s = (sum.x + sum.y) + (sum.z + sum.w)
    let max = Swift.max(mx2.x, mx2.y), min = Swift.min(mn2.x, mn2.y)
    return (max, min, s == s && max < .infinity && min > -.infinity)
}

/// The element of largest magnitude with its sign, first on ties (`+0` if all are zero), or nil
/// when +a and -a both occur and the scalar path must pick the first.
@inline(__always)
func signedAbsMax(max: Float, min: Float) -> Float? {
    // Branch-free in the common case: which side wins is a coin flip for symmetric data.
    if max == -min { return max == 0 ? 0 : nil }  // ±a both present (or all zero): rare
    return max > -min ? max : min
}

extension Q8_0 {
    /// `quantize_row_q8_0_ref` over `count` consecutive blocks, vectorised.
    static func quantizeBlocksSIMD(_ x0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer, count: Int) {
        for b in 0..<count {
            let x = x0 + 32 * b, y = y0 + 34 * b
            let blk = Block32(x)
            let (mx, mn, finite) = blockRange(blk)
            guard finite else { quantizeBlockScalar(x, y); continue }
            let d = Swift.max(mx, -mn).magnitude / 127  // .magnitude: an all-zero block gives +0, as in C
            let id: Float = d != 0 ? 1 / d : 0
            y.storeFP16(d, at: 0)
            let m = I4(repeating: 0xFF)
            for g in 0..<2 {
                let q0 = integers(roundHalfAway(blk[4 * g] * id)) & m
                let q1 = integers(roundHalfAway(blk[4 * g + 1] * id)) & m
                let q2 = integers(roundHalfAway(blk[4 * g + 2] * id)) & m
                let q3 = integers(roundHalfAway(blk[4 * g + 3] * id)) & m
                storeBytes(q0, q1, q2, q3, y, at: 2 + 16 * g)
            }
        }
    }
}

/// Codes `min(limit, trunc(v·id + offset))` (the reference's symmetric rounding), as floats.
@inline(__always)
func symmetricCodes(_ v: F4, id: Float, offset: Float, limit: Float) -> F4 {
    vmin(floorNonNegative(v * id + F4(repeating: offset)), F4(repeating: limit))
}

/// Codes `trunc((v - min)·id + 0.5)`, clamped to `limit` if given, as floats.
@inline(__always)
func asymmetricCodes(_ v: F4, min: Float, id: Float, limit: Float?) -> F4 {
    let q = floorNonNegative((v - F4(repeating: min)) * id + F4(repeating: 0.5))
    guard let limit else { return q }
    return vmin(q, F4(repeating: limit))
}

@inline(__always)
func setLane(_ n: inout (I4, I4, I4, I4), _ r: Int, _ v: I4) {
    switch r {
    case 0: n.0 = v
    case 1: n.1 = v
    case 2: n.2 = v
    default: n.3 = v
    }
}

/// Stores the nibble bytes `q[j] | q[j+16] << 4` of 32 codes in 0...15 (`code(k)` for vector `k`
/// of a `Block32`): the byte is `qa + 16·qb` computed exactly in float, read out by the magic add.
@inline(__always)
func packNibbles4(_ code: (Int) -> F4, into y: UnsafeMutableRawPointer, at offset: Int) {
    var n = (I4.zero, I4.zero, I4.zero, I4.zero)
    for r in 0..<4 {
        let byte = code(r) + code(4 + r) * F4(repeating: 16) + F4(repeating: roundingMagic)
        setLane(&n, r, bitsOf(byte) & I4(repeating: 0xFF))
    }
    storeBytes(n.0, n.1, n.2, n.3, y, at: offset)
}

/// Like `packNibbles4` for codes in 0...31; returns the Q5 high-bit word (bit `i` = bit 4 of
/// code `i`).
@inline(__always)
func packNibbles5(_ code: (Int) -> F4, into y: UnsafeMutableRawPointer, at offset: Int) -> UInt32 {
    let low = I4(repeating: 0xF), one = I4(repeating: 1)
    var high = I4.zero
    var n = (I4.zero, I4.zero, I4.zero, I4.zero)
    for r in 0..<4 {
        let a = integers(code(r)), b = integers(code(4 + r))  // elements 4r + j and 16 + 4r + j
        let weights = I4(1, 2, 4, 8) &<< Int32(4 * r)
        // (0 - bit4) is all-ones where bit 4 is set: selects the lane's weight.
        high |= ((I4.zero &- ((a &>> 4) & one)) & weights) | ((I4.zero &- ((b &>> 4) & one)) & (weights &<< 16))
        setLane(&n, r, (a & low) | ((b & low) &<< 4))
    }
    storeBytes(n.0, n.1, n.2, n.3, y, at: offset)
    return UInt32(bitPattern: high.x | high.y | high.z | high.w)
}

extension Q4_0 {
    /// `quantize_row_q4_0_ref` over `count` consecutive blocks, vectorised.
    static func quantizeBlocksSIMD(_ x0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer, count: Int) {
        for b in 0..<count {
            let x = x0 + 32 * b, y = y0 + 18 * b
            let blk = Block32(x)
            let (mx, mn, finite) = blockRange(blk)
            guard finite, let max = signedAbsMax(max: mx, min: mn) else { quantizeBlockScalar(x, y); continue }
            let d = max / -8
            let id: Float = d != 0 ? 1 / d : 0
            guard id.isFinite else { quantizeBlockScalar(x, y); continue }
            y.storeFP16(d, at: 0)
            packNibbles4({ symmetricCodes(blk[$0], id: id, offset: 8.5, limit: 15) }, into: y, at: 2)
        }
    }
}

extension Q5_0 {
    /// `quantize_row_q5_0_ref` over `count` consecutive blocks, vectorised.
    static func quantizeBlocksSIMD(_ x0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer, count: Int) {
        for b in 0..<count {
            let x = x0 + 32 * b, y = y0 + 22 * b
            let blk = Block32(x)
            let (mx, mn, finite) = blockRange(blk)
            guard finite, let max = signedAbsMax(max: mx, min: mn) else { quantizeBlockScalar(x, y); continue }
            let d = max / -16
            let id: Float = d != 0 ? 1 / d : 0
            guard id.isFinite else { quantizeBlockScalar(x, y); continue }
            y.storeFP16(d, at: 0)
            let qh = packNibbles5({ symmetricCodes(blk[$0], id: id, offset: 16.5, limit: 31) }, into: y, at: 6)
            y.storeBytes(of: qh.littleEndian, toByteOffset: 2, as: UInt32.self)
        }
    }
}

extension Q4_1 {
    /// `quantize_row_q4_1_ref` over `count` consecutive blocks, vectorised.
    static func quantizeBlocksSIMD(_ x0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer, count: Int) {
        for b in 0..<count {
            let x = x0 + 32 * b, y = y0 + 20 * b
            let blk = Block32(x)
            let (max, min, finite) = blockRange(blk)
            // min == ±0: the reference keeps the first zero's sign, which a reduction cannot tell.
            guard finite, min != 0 else { quantizeBlockScalar(x, y); continue }
            let d = (max - min) / 15
            let id: Float = d != 0 ? 1 / d : 0
            guard id.isFinite else { quantizeBlockScalar(x, y); continue }
            y.storeFP16(d, at: 0)
            y.storeFP16(min, at: 2)
            // The reference's MIN(15) never binds here: x - min ≤ max - min, so (x - min)·id + 0.5 is at
            // most 15.5 plus a few ulps.
            packNibbles4({ asymmetricCodes(blk[$0], min: min, id: id, limit: nil) }, into: y, at: 4)
        }
    }
}

extension Q5_1 {
    /// `quantize_row_q5_1_ref` over `count` consecutive blocks, vectorised.
    static func quantizeBlocksSIMD(_ x0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer, count: Int) {
        for b in 0..<count {
            let x = x0 + 32 * b, y = y0 + 24 * b
            let blk = Block32(x)
            let (max, min, finite) = blockRange(blk)
            guard finite, min != 0 else { quantizeBlockScalar(x, y); continue }
            let d = (max - min) / 31
            let id: Float = d != 0 ? 1 / d : 0
            guard id.isFinite else { quantizeBlockScalar(x, y); continue }
            y.storeFP16(d, at: 0)
            y.storeFP16(min, at: 2)
            let qh = packNibbles5({ asymmetricCodes(blk[$0], min: min, id: id, limit: nil) }, into: y, at: 8)
            y.storeBytes(of: qh.littleEndian, toByteOffset: 4, as: UInt32.self)
        }
    }
}

// The scalar fallbacks stay out of line so the vector paths inline into the row loops.
extension Q8_0 {
    @inline(never) static func quantizeBlockScalar(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        quantizeBlock(x, y)
    }
}

extension Q4_0 {
    @inline(never) static func quantizeBlockScalar(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        quantizeBlockRef(x, y)
    }
}

extension Q4_1 {
    @inline(never) static func quantizeBlockScalar(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        quantizeBlockRef(x, y)
    }
}

extension Q5_0 {
    @inline(never) static func quantizeBlockScalar(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        quantizeBlockRef(x, y)
    }
}

extension Q5_1 {
    @inline(never) static func quantizeBlockScalar(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        quantizeBlockRef(x, y)
    }
}
