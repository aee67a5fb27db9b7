/// Q4_1: 32 values in 20 bytes, `d: fp16 | m: fp16 | qs[16]` (nibbles packed as in Q4_0).
///
/// Without importance (`quantize_row_q4_1_ref`): `d = (max - min) / 15`, `m = min`,
/// `q = min(15, trunc((x - min)/d + 0.5))`. With importance (`quantize_row_q4_1_impl`):
/// `(d, the_min) = make_qkx3_quants(32, 15, x, w, -0.9, 0.05, 36)`, `m = -the_min`, with
/// `w = qw·sqrt(mean(x²) + x²)` over the whole row. Dequantization: `y = q·d + m`.
public enum Q4_1: BlockCodec {
    public static var type: GGMLType { .q4_1 }

    /// The scalar port of the reference, statement by statement (used to cross-check the fast path
    /// in `Legacy+Lanes.swift`).
    static func quantizeRowReference(
        _ row: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?, into out: UnsafeMutableRawBufferPointer
    ) {
        let blocks = checkQuantizeArguments(row, importance, out)
        guard blocks > 0 else { return }
        let x = row.baseAddress!
        let o = out.baseAddress!
        guard let qw = importance?.baseAddress else {
            for b in 0..<blocks { quantizeBlockRef(x + 32 * b, o + 20 * b) }
            return
        }
        let sigma2 = sumOfSquares(x, row.count) / Float(row.count)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { w in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { L in
                for b in 0..<blocks {
                    let xb = x + 32 * b
                    importanceWeights(xb, qw + 32 * b, sigma2: sigma2, 32, into: w.baseAddress!)
                    let (d, theMin) = makeQKXQuants(
                        32, 15, xb, w.baseAddress!, L.baseAddress!, L.baseAddress! + 32,
                        rmin: -0.9, rdelta: 0.05, nstep: 36, useMad: false, qkx3: true)
                    let y = o + 20 * b
                    y.storeFP16(d, at: 0)
                    y.storeFP16(-theMin, at: 2)
                    for j in 0..<16 { y.storeByte(L[j] | (L[j + 16] << 4), at: 4 + j) }
                }
            }
        }
    }

    @inline(__always)
    static func quantizeBlockRef(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var min = Float.greatestFiniteMagnitude
        var max = -Float.greatestFiniteMagnitude
        for j in 0..<32 {
            if x[j] < min { min = x[j] }
            if x[j] > max { max = x[j] }
        }
        let d = (max - min) / 15
        let id: Float = d != 0 ? 1 / d : 0
        y.storeFP16(d, at: 0)
        y.storeFP16(min, at: 2)
        for j in 0..<16 {
            let q0 = legacyCode((x[j] - min) * id + 0.5, limit: 15)
            let q1 = legacyCode((x[j + 16] - min) * id + 0.5, limit: 15)
            y.storeByte(q0 | (q1 << 4), at: 4 + j)
        }
    }

    public static func dequantizeRow(_ data: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        let blocks = checkDequantizeArguments(data, out)
        guard blocks > 0 else { return }
        let p = data.baseAddress!
        let y = out.baseAddress!
        for b in 0..<blocks {
            let blk = p + 20 * b
            let d = blk.loadFP16(at: 0)
            let m = blk.loadFP16(at: 2)
            for j in 0..<16 {
                let q = blk.byte(at: 4 + j)
                y[32 * b + j] = Float(q & 0xF) * d + m
                y[32 * b + j + 16] = Float(q >> 4) * d + m
            }
        }
    }
}
