/// Q5_1: 32 values in 24 bytes, `d: fp16 | m: fp16 | qh: u32 LE | qs[16]` (bits packed as in Q5_0).
///
/// Without importance (`quantize_row_q5_1_ref`): `d = (max - min) / 31`, `m = min`,
/// `q = trunc((x - min)/d + 0.5)` (no clamp, as in the reference). With importance
/// (`quantize_row_q5_1_impl`): `(d, the_min) = make_qkx3_quants(32, 31, x, w, -0.9, 0.05, 36)`,
/// `m = -the_min`, `w = qw·sqrt(mean(x²) + x²)` over the whole row. Dequantization: `y = q·d + m`.
public enum Q5_1: BlockCodec {
    public static var type: GGMLType { .q5_1 }

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
            for b in 0..<blocks { quantizeBlockRef(x + 32 * b, o + 24 * b) }
            return
        }
        let sigma2 = sumOfSquares(x, row.count) / Float(row.count)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { w in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { L in
                for b in 0..<blocks {
                    let xb = x + 32 * b
                    importanceWeights(xb, qw + 32 * b, sigma2: sigma2, 32, into: w.baseAddress!)
                    let (d, theMin) = makeQKXQuants(
                        32, 31, xb, w.baseAddress!, L.baseAddress!, L.baseAddress! + 32,
                        rmin: -0.9, rdelta: 0.05, nstep: 36, useMad: false, qkx3: true)
                    let y = o + 24 * b
                    y.storeFP16(d, at: 0)
                    y.storeFP16(-theMin, at: 2)
                    var qh: UInt32 = 0
                    for j in 0..<16 { y.storeByte(packLow5(L[j], L[j + 16], j, &qh), at: 8 + j) }
                    y.storeBytes(of: qh.littleEndian, toByteOffset: 4, as: UInt32.self)
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
        let d = (max - min) / 31
        let id: Float = d != 0 ? 1 / d : 0
        y.storeFP16(d, at: 0)
        y.storeFP16(min, at: 2)
        var qh: UInt32 = 0
        for j in 0..<16 {
            let q0 = UInt8(truncatingIfNeeded: truncatingToInt32((x[j] - min) * id + 0.5))
            let q1 = UInt8(truncatingIfNeeded: truncatingToInt32((x[j + 16] - min) * id + 0.5))
            y.storeByte(packLow5(q0, q1, j, &qh), at: 8 + j)
        }
        y.storeBytes(of: qh.littleEndian, toByteOffset: 4, as: UInt32.self)
    }

    public static func dequantizeRow(_ data: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        let blocks = checkDequantizeArguments(data, out)
        guard blocks > 0 else { return }
        let p = data.baseAddress!
        let y = out.baseAddress!
        for b in 0..<blocks {
            let blk = p + 24 * b
            let d = blk.loadFP16(at: 0)
            let m = blk.loadFP16(at: 2)
            let qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            for j in 0..<16 {
                let (q0, q1) = unpack5(blk.byte(at: 8 + j), qh, j)
                y[32 * b + j] = Float(q0) * d + m
                y[32 * b + j + 16] = Float(q1) * d + m
            }
        }
    }
}
