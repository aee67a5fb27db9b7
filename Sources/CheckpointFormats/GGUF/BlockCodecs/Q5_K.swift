/// Q5_K: 256 values in 176 bytes, `d: fp16 | dmin: fp16 | scales[12] | qh[32] | qs[128]`.
///
/// Q4_K with 5-bit codes (`q` in 0...31): `qs` holds the low 4 bits packed as in Q4_K, and
/// `qh[l]` bit `2c` (`2c+1`) is bit 4 of `q[64c + l]` (`q[64c + 32 + l]`).
/// `y = d·ls·q - dmin·lm`.
///
/// Without importance (`quantize_row_q5_K_ref`): `make_qkx2_quants(32, 31, x, av_x + |x|, -0.5,
/// 0.1, 15)` per sub-block. With importance (`quantize_row_q5_K_impl`): as Q4_K with `nmax` 31.
public enum Q5_K: BlockCodec {
    public static var type: GGMLType { .q5_K }

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
                let y = o + 176 * b
                let L = s.quantize(x + 256 * b, qw.map { $0 + 256 * b }, nmax: 31, clampCodes: true, y)
                packQ5K(L, y)
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
                let y = o + 176 * b
                quantizeScaleMins(xb, qw.map { $0 + 256 * b }, nmax: 31, clampCodes: true, y, s)
                requantize(xb, UnsafeRawPointer(y), nmax: 31, s.L)
                packQ5K(s.L, y)
            }
        }
    }

    public static func dequantizeRow(_ data: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        let blocks = checkDequantizeArguments(data, out)
        guard blocks > 0 else { return }
        let p = data.baseAddress!
        var y = out.baseAddress!
        for b in 0..<blocks {
            let blk = p + 176 * b
            let d = blk.loadFP16(at: 0)
            let min = blk.loadFP16(at: 2)
            let s = (blk + 4).assumingMemoryBound(to: UInt8.self)
            for c in 0..<4 {
                let (sc1, m1) = scaleMinK4(2 * c, s)
                let (sc2, m2) = scaleMinK4(2 * c + 1, s)
                let d1 = d * Float(sc1), dm1 = min * Float(m1)
                let d2 = d * Float(sc2), dm2 = min * Float(m2)
                let u1 = UInt8(1) << UInt8(2 * c), u2 = UInt8(2) << UInt8(2 * c)
                let ql = blk + 48 + 32 * c
                for l in 0..<32 {
                    let h: UInt8 = blk.byte(at: 16 + l) & u1 != 0 ? 16 : 0
                    y[l] = d1 * Float((ql.byte(at: l) & 0xF) + h) - dm1
                }
                for l in 0..<32 {
                    let h: UInt8 = blk.byte(at: 16 + l) & u2 != 0 ? 16 : 0
                    y[32 + l] = d2 * Float((ql.byte(at: l) >> 4) + h) - dm2
                }
                y += 64
            }
        }
    }
}

/// Packs 256 codes in `0...31` into Q5_K's `qh[32]` (offset 16) and `qs[128]` (offset 48).
@inline(__always)
func packQ5K(_ L: UnsafePointer<UInt8>, _ y: UnsafeMutableRawPointer) {
    for l in 0..<32 {
        var qh: UInt8 = 0
        for c in 0..<4 {
            let q1 = L[64 * c + l]
            let q2 = L[64 * c + 32 + l]
            qh |= ((q1 >> 4) & 1) << UInt8(2 * c)
            qh |= ((q2 >> 4) & 1) << UInt8(2 * c + 1)
            y.storeByte((q1 & 0xF) | ((q2 & 0xF) << 4), at: 48 + 32 * c + l)
        }
        y.storeByte(qh, at: 16 + l)
    }
}
