/// Q2_K: 256 values in 84 bytes, `scales[16] | qs[64] | d: fp16 | dmin: fp16`.
///
/// Sixteen sub-blocks of 16; `scales[j]` holds the 4-bit scale code (low nibble) and min code
/// (high nibble) of sub-block `j`; `y = d·(sc & 15)·q - dmin·(sc >> 4)` with `q` in 0...3.
/// `qs[32h + l]` bits `2k..2k+1` hold `q[128h + 32k + l]`.
///
/// Without importance (`quantize_row_q2_K_ref`): per sub-block
/// `make_qkx2_quants(16, 3, x, |x|, -0.5, 0.1, 15, use_mad)`, then scales and mins are quantized
/// linearly to 4 bits. With importance (`quantize_row_q2_K_impl`): `make_qkx3_quants(16, 3, x, w,
/// -0.9, 0.05, 36)` with `w = qw·sqrt(Σx²/256 + x²)`, scales/mins through `make_qp_quants(16, 15, …)`.
public enum Q2_K: BlockCodec {
    public static var type: GGMLType { .q2_K }

    /// The scalar port of the reference, statement by statement (used to cross-check the fast path
    /// in `KQuant16+Lanes.swift`).
    static func quantizeRowReference(
        _ row: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?, into out: UnsafeMutableRawBufferPointer
    ) {
        let blocks = checkQuantizeArguments(row, importance, out)
        guard blocks > 0 else { return }
        let x = row.baseAddress!
        let o = out.baseAddress!
        let qw = importance?.baseAddress
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { f in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256 + 16 + 32) { u in
                let scratch = Scratch(f: f.baseAddress!, u: u.baseAddress!)
                for b in 0..<blocks {
                    if let qw {
                        quantizeBlockImpl(x + 256 * b, qw + 256 * b, o + 84 * b, scratch)
                    } else {
                        quantizeBlockRef(x + 256 * b, o + 84 * b, scratch)
                    }
                }
            }
        }
    }

    struct Scratch {
        let f: UnsafeMutablePointer<Float>  // weights[16] | scales[16] | mins[16] | sw[16]
        let u: UnsafeMutablePointer<UInt8>  // L[256] | Laux[16] | Ls[16] | Lm[16]
        var weights: UnsafeMutablePointer<Float> { f }
        var scales: UnsafeMutablePointer<Float> { f + 16 }
        var mins: UnsafeMutablePointer<Float> { f + 32 }
        var sw: UnsafeMutablePointer<Float> { f + 48 }
        var L: UnsafeMutablePointer<UInt8> { u }
        var Laux: UnsafeMutablePointer<UInt8> { u + 256 }
        var Ls: UnsafeMutablePointer<UInt8> { u + 272 }
        var Lm: UnsafeMutablePointer<UInt8> { u + 288 }
    }

    static func quantizeBlockRef(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ s: Scratch) {
        var maxScale: Float = 0
        var maxMin: Float = 0
        for j in 0..<16 {
            for l in 0..<16 { s.weights[l] = abs(x[16 * j + l]) }
            let (scale, theMin) = makeQKXQuants(
                16, 3, x + 16 * j, s.weights, s.L + 16 * j, s.Laux,
                rmin: -0.5, rdelta: 0.1, nstep: 15, useMad: true, qkx3: false)
            s.scales[j] = scale
            s.mins[j] = theMin
            if scale > maxScale { maxScale = scale }
            if theMin > maxMin { maxMin = theMin }
        }
        let sc = s.Ls
        if maxScale > 0 {
            let iscale = 15 / maxScale
            for j in 0..<16 { sc[j] = UInt8(truncatingIfNeeded: nearestInt(iscale * s.scales[j])) }
            y.storeFP16(maxScale / 15, at: 80)
        } else {
            for j in 0..<16 { sc[j] = 0 }
            y.storeFP16(0, at: 80)
        }
        if maxMin > 0 {
            let iscale = 15 / maxMin
            for j in 0..<16 { sc[j] |= UInt8(truncatingIfNeeded: nearestInt(iscale * s.mins[j]) << 4) }
            y.storeFP16(maxMin / 15, at: 82)
        } else {
            y.storeFP16(0, at: 82)
        }
        for j in 0..<16 { y.storeByte(sc[j], at: j) }
        requantizeAndPack(x, y, s.L)
    }

    static func quantizeBlockImpl(
        _ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ s: Scratch
    ) {
        let sigma2 = sumOfSquares(x, 256) / 256
        for j in 0..<16 {
            importanceWeights(x + 16 * j, qw + 16 * j, sigma2: sigma2, 16, into: s.weights)
            var sw: Float = 0
            for l in 0..<16 { sw += s.weights[l] }
            s.sw[j] = sw
            let (scale, theMin) = makeQKXQuants(
                16, 3, x + 16 * j, s.weights, s.L + 16 * j, s.Laux,
                rmin: -0.9, rdelta: 0.05, nstep: 36, useMad: false, qkx3: true)
            s.scales[j] = scale
            s.mins[j] = theMin
        }
        let dm = makeQPQuants(16, 15, s.scales, s.Ls, s.sw)
        let mm = makeQPQuants(16, 15, s.mins, s.Lm, s.sw)
        y.storeFP16(dm, at: 80)
        y.storeFP16(mm, at: 82)
        for j in 0..<16 { y.storeByte(s.Ls[j] | (s.Lm[j] << 4), at: j) }
        requantizeAndPack(x, y, s.L)
    }

    /// Re-quantizes every sub-block with its stored fp16 scale/min (keeping `L` where the scale
    /// is zero) and packs `L` into `qs`.
    @inline(__always)
    static func requantizeAndPack(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<UInt8>) {
        let raw = UnsafeRawPointer(y)
        let d = raw.loadFP16(at: 80)
        let dmin = raw.loadFP16(at: 82)
        for j in 0..<16 {
            let sc = raw.byte(at: j)
            let dd = d * Float(sc & 0xF)
            if dd == 0 { continue }
            let dm = dmin * Float(sc >> 4)
            for i in 0..<16 {
                let l = nearestInt((x[16 * j + i] + dm) / dd)
                L[16 * j + i] = UInt8(truncatingIfNeeded: Swift.max(0, Swift.min(3, l)))
            }
        }
        for h in 0..<2 {
            for l in 0..<32 {
                let base = 128 * h + l
                let q = L[base] | (L[base + 32] << 2) | (L[base + 64] << 4) | (L[base + 96] << 6)
                y.storeByte(q, at: 16 + 32 * h + l)
            }
        }
    }

    public static func dequantizeRow(_ data: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        let blocks = checkDequantizeArguments(data, out)
        guard blocks > 0 else { return }
        let p = data.baseAddress!
        var y = out.baseAddress!
        for b in 0..<blocks {
            let blk = p + 84 * b
            let d = blk.loadFP16(at: 80)
            let min = blk.loadFP16(at: 82)
            var sub = 0
            for h in 0..<2 {
                let q = blk + 16 + 32 * h
                for shift in stride(from: 0, to: 8, by: 2) {
                    for half in 0..<2 {
                        let sc = blk.byte(at: sub)
                        sub += 1
                        let dl = d * Float(sc & 0xF)
                        let ml = min * Float(sc >> 4)
                        for l in 0..<16 {
                            y.pointee = dl * Float((q.byte(at: 16 * half + l) >> UInt8(shift)) & 3) - ml
                            y += 1
                        }
                    }
                }
            }
        }
    }
}
