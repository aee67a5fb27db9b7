/// Q4_K: 256 values in 144 bytes, `d: fp16 | dmin: fp16 | scales[12] | qs[128]`.
///
/// Eight sub-blocks of 32, each with a 6-bit scale code `ls` and min code `lm` (packed as in
/// `get_scale_min_k4`); `y = d·ls·q - dmin·lm` with `q` in 0...15. `qs[32c + l]` holds
/// `q[64c + l]` (low nibble) and `q[64c + 32 + l]` (high nibble).
///
/// Without importance (`quantize_row_q4_K_ref`): `make_qkx2_quants(32, 15, x, av_x + |x|, -1, 0.1,
/// 20)` per sub-block, codes `min(63, nearest_int(63·s/max_s))`. With importance
/// (`quantize_row_q4_K_impl`): `make_qkx3_quants(32, 15, x, w, -0.9, 0.05, 36)` with
/// `w = qw·sqrt(2Σx²/256 + x²)` and codes from `make_qp_quants(8, 63, …, Σw)`.
public enum Q4_K: BlockCodec {
    public static var type: GGMLType { .q4_K }

    public static func quantizeRow(
        _ row: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?, into out: UnsafeMutableRawBufferPointer
    ) {
        let blocks = checkQuantizeArguments(row, importance, out)
        guard blocks > 0 else { return }
        let x = row.baseAddress!
        let o = out.baseAddress!
        let qw = importance?.baseAddress
        KQuant32Lanes.with { s in
            for b in 0..<blocks {
                let y = o + 144 * b
                let L = s.quantize(x + 256 * b, qw.map { $0 + 256 * b }, nmax: 15, clampCodes: false, y)
                for c in 0..<4 {
                    for l in 0..<32 {
                        y.storeByte(L[64 * c + l] | (L[64 * c + 32 + l] << 4), at: 16 + 32 * c + l)
                    }
                }
            }
        }
    }

    /// The scalar port of the reference, statement by statement (used to cross-check the fast path).
    static func quantizeRowReference(
        _ row: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?, into out: UnsafeMutableRawBufferPointer
    ) {
        let blocks = checkQuantizeArguments(row, importance, out)
        guard blocks > 0 else { return }
        let x = row.baseAddress!
        let o = out.baseAddress!
        let qw = importance?.baseAddress
        KQuantScratch.with { s in
            for b in 0..<blocks {
                let xb = x + 256 * b
                let y = o + 144 * b
                quantizeScaleMins(xb, qw.map { $0 + 256 * b }, nmax: 15, clampCodes: false, y, s)
                requantize(xb, UnsafeRawPointer(y), nmax: 15, s.L)
                for c in 0..<4 {
                    for l in 0..<32 {
                        y.storeByte(s.L[64 * c + l] | (s.L[64 * c + 32 + l] << 4), at: 16 + 32 * c + l)
                    }
                }
            }
        }
    }

    public static func dequantizeRow(_ data: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        let blocks = checkDequantizeArguments(data, out)
        guard blocks > 0 else { return }
        let p = data.baseAddress!
        var y = out.baseAddress!
        for b in 0..<blocks {
            let blk = p + 144 * b
            let d = blk.loadFP16(at: 0)
            let min = blk.loadFP16(at: 2)
            let s = (blk + 4).assumingMemoryBound(to: UInt8.self)
            for c in 0..<4 {
                let (sc1, m1) = scaleMinK4(2 * c, s)
                let (sc2, m2) = scaleMinK4(2 * c + 1, s)
                let d1 = d * Float(sc1), dm1 = min * Float(m1)
                let d2 = d * Float(sc2), dm2 = min * Float(m2)
                let q = blk + 16 + 32 * c
                for l in 0..<32 { y[l] = d1 * Float(q.byte(at: l) & 0xF) - dm1 }
                for l in 0..<32 { y[32 + l] = d2 * Float(q.byte(at: l) >> 4) - dm2 }
                y += 64
            }
        }
    }
}

/// Per-row scratch for the 32-wide K-quants (Q4_K, Q5_K).
struct KQuantScratch {
    let f: UnsafeMutablePointer<Float>  // weights[32] | scales[8] | mins[8] | sw[8]
    let u: UnsafeMutablePointer<UInt8>  // L[256] | Laux[32] | Ls[8] | Lm[8]
    var weights: UnsafeMutablePointer<Float> { f }
    var scales: UnsafeMutablePointer<Float> { f + 32 }
    var mins: UnsafeMutablePointer<Float> { f + 40 }
    var sw: UnsafeMutablePointer<Float> { f + 48 }
    var L: UnsafeMutablePointer<UInt8> { u }
    var Laux: UnsafeMutablePointer<UInt8> { u + 256 }
    var Ls: UnsafeMutablePointer<UInt8> { u + 288 }
    var Lm: UnsafeMutablePointer<UInt8> { u + 296 }

    static func with(_ body: (KQuantScratch) -> Void) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 56) { f in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 304) { u in
                body(KQuantScratch(f: f.baseAddress!, u: u.baseAddress!))
            }
        }
    }
}

/// The scale/min step shared by Q4_K (`nmax` 15) and Q5_K (`nmax` 31): fills `s.L` with codes in
/// `0...nmax` and writes `d`, `dmin` and the 12 scale bytes at offsets 0, 2 and 4 of `y`.
func quantizeScaleMins(
    _ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?, nmax: Int, clampCodes: Bool,
    _ y: UnsafeMutableRawPointer, _ s: KQuantScratch
) {
    let d: Float, dmin: Float
    if let qw {
        let sigma2 = 2 * sumOfSquares(x, 256) / 256
        for j in 0..<8 {
            importanceWeights(x + 32 * j, qw + 32 * j, sigma2: sigma2, 32, into: s.weights)
            var sumw: Float = 0
            for l in 0..<32 { sumw += s.weights[l] }
            s.sw[j] = sumw
            (s.scales[j], s.mins[j]) = makeQKXQuants(
                32, nmax, x + 32 * j, s.weights, s.L + 32 * j, s.Laux,
                rmin: -0.9, rdelta: 0.05, nstep: 36, useMad: false, qkx3: true)
        }
        d = makeQPQuants(8, 63, s.scales, s.Ls, s.sw)
        dmin = makeQPQuants(8, 63, s.mins, s.Lm, s.sw)
        if clampCodes {
            for j in 0..<8 {
                s.Ls[j] = Swift.min(63, s.Ls[j])
                s.Lm[j] = Swift.min(63, s.Lm[j])
            }
        }
    } else {
        var maxScale: Float = 0
        var maxMin: Float = 0
        for j in 0..<8 {
            let xs = x + 32 * j
            let avX = (sumOfSquares(xs, 32) / 32).squareRoot()
            for l in 0..<32 { s.weights[l] = avX + abs(xs[l]) }
            let (scale, theMin) = makeQKXQuants(
                32, nmax, xs, s.weights, s.L + 32 * j, s.Laux,
                rmin: nmax == 15 ? -1 : -0.5, rdelta: 0.1, nstep: nmax == 15 ? 20 : 15, useMad: false, qkx3: false)
            s.scales[j] = scale
            s.mins[j] = theMin
            if scale > maxScale { maxScale = scale }
            if theMin > maxMin { maxMin = theMin }
        }
        let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
        let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
        for j in 0..<8 {
            s.Ls[j] = Swift.min(63, UInt8(truncatingIfNeeded: nearestInt(invScale * s.scales[j])))
            s.Lm[j] = Swift.min(63, UInt8(truncatingIfNeeded: nearestInt(invMin * s.mins[j])))
        }
        d = maxScale / 63
        dmin = maxMin / 63
    }
    y.storeFP16(d, at: 0)
    y.storeFP16(dmin, at: 2)
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 12) { packed in
        packScaleMinK4(s.Ls, s.Lm, into: packed.baseAddress!)
        for j in 0..<12 { y.storeByte(packed[j], at: 4 + j) }
    }
}

/// Re-quantizes each sub-block of 32 with the stored fp16 `d`/`dmin` and 6-bit codes, keeping
/// `L` where the effective scale is zero (Q4_K and Q5_K).
@inline(__always)
func requantize(_ x: UnsafePointer<Float>, _ y: UnsafeRawPointer, nmax: Int, _ L: UnsafeMutablePointer<UInt8>) {
    let d = y.loadFP16(at: 0)
    let dmin = y.loadFP16(at: 2)
    let s = (y + 4).assumingMemoryBound(to: UInt8.self)
    for j in 0..<8 {
        let (sc, m) = scaleMinK4(j, s)
        let dd = d * Float(sc)
        if dd == 0 { continue }
        let dm = dmin * Float(m)
        for i in 0..<32 {
            let l = nearestInt((x[32 * j + i] + dm) / dd)
            L[32 * j + i] = UInt8(truncatingIfNeeded: Swift.max(0, Swift.min(nmax, l)))
        }
    }
}
