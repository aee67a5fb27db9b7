/// Q6_K: 256 values in 210 bytes, `ql[128] | qh[64] | scales: int8[16] | d: fp16`.
///
/// Sixteen sub-blocks of 16 with signed 8-bit scales; `y = d·sc·(q - 32)` with `q` in 0...63.
/// For each half `h` (128 values) and `l` in 0..<32, with `a, b, c, e = q[128h+l+{0,32,64,96}]`:
/// `ql[64h+l] = a&15 | (c&15)<<4`, `ql[64h+l+32] = b&15 | (e&15)<<4`,
/// `qh[32h+l] = a>>4 | (b>>4)<<2 | (c>>4)<<4 | (e>>4)<<6`.
///
/// Without importance (`quantize_row_q6_K_ref`): `make_qx_quants(16, 32, x, x²)` per sub-block,
/// `iscale = -128/max_scale`, `sc = min(127, nearest_int(iscale·s))`. With importance
/// (`quantize_row_q6_K_impl`): the same with the raw importance values as weights.
public enum Q6_K: BlockCodec {
    public static var type: GGMLType { .q6_K }

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
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { f in
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256 + 16) { l in
                let scales = f.baseAddress!
                let L = l.baseAddress!, sc = L + 256
                for b in 0..<blocks {
                    quantizeBlock(x + 256 * b, qw.map { $0 + 256 * b }, o + 210 * b, scales, L, sc)
                }
            }
        }
    }

    static func quantizeBlock(
        _ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?, _ y: UnsafeMutableRawPointer,
        _ scales: UnsafeMutablePointer<Float>, _ L: UnsafeMutablePointer<Int8>, _ sc: UnsafeMutablePointer<Int8>
    ) {
        var maxScale: Float = 0
        var maxAbsScale: Float = 0
        for ib in 0..<16 {
            let scale = makeQXQuants(16, 32, x + 16 * ib, L + 16 * ib, qw.map { $0 + 16 * ib })
            scales[ib] = scale
            if abs(scale) > maxAbsScale {
                maxAbsScale = abs(scale)
                maxScale = scale
            }
        }
        if maxAbsScale < 1e-15 {
            for i in 0..<210 { y.storeByte(0, at: i) }
            return
        }
        let iscale = -128 / maxScale
        y.storeFP16(1 / iscale, at: 208)
        for ib in 0..<16 {
            sc[ib] = Int8(truncatingIfNeeded: Swift.min(127, nearestInt(iscale * scales[ib])))
            y.storeByte(UInt8(bitPattern: sc[ib]), at: 192 + ib)
        }
        let d = UnsafeRawPointer(y).loadFP16(at: 208)
        for j in 0..<16 {
            let dd = d * Float(sc[j])
            if dd == 0 { continue }
            for i in 0..<16 {
                let l = Swift.max(-32, Swift.min(31, nearestInt(x[16 * j + i] / dd)))
                L[16 * j + i] = Int8(l + 32)
            }
        }
        for h in 0..<2 {
            for l in 0..<32 {
                let base = 128 * h + l
                let a = UInt8(bitPattern: L[base]), b = UInt8(bitPattern: L[base + 32])
                let c = UInt8(bitPattern: L[base + 64]), e = UInt8(bitPattern: L[base + 96])
                y.storeByte((a & 0xF) | ((c & 0xF) << 4), at: 64 * h + l)
                y.storeByte((b & 0xF) | ((e & 0xF) << 4), at: 64 * h + l + 32)
                y.storeByte((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6), at: 128 + 32 * h + l)
            }
        }
    }

    public static func dequantizeRow(_ data: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        let blocks = checkDequantizeArguments(data, out)
        guard blocks > 0 else { return }
        let p = data.baseAddress!
        var y = out.baseAddress!
        for b in 0..<blocks {
            let blk = p + 210 * b
            let d = blk.loadFP16(at: 208)
            for h in 0..<2 {
                let ql = blk + 64 * h, qh = blk + 128 + 32 * h
                for l in 0..<32 {
                    let sub = 8 * h + l / 16
                    let hb = qh.byte(at: l)
                    let q1 = Int((ql.byte(at: l) & 0xF) | ((hb & 3) << 4)) - 32
                    let q2 = Int((ql.byte(at: l + 32) & 0xF) | (((hb >> 2) & 3) << 4)) - 32
                    let q3 = Int((ql.byte(at: l) >> 4) | (((hb >> 4) & 3) << 4)) - 32
                    let q4 = Int((ql.byte(at: l + 32) >> 4) | (((hb >> 6) & 3) << 4)) - 32
                    y[l] = d * Float(Int8(bitPattern: blk.byte(at: 192 + sub))) * Float(q1)
                    y[l + 32] = d * Float(Int8(bitPattern: blk.byte(at: 194 + sub))) * Float(q2)
                    y[l + 64] = d * Float(Int8(bitPattern: blk.byte(at: 196 + sub))) * Float(q3)
                    y[l + 96] = d * Float(Int8(bitPattern: blk.byte(at: 198 + sub))) * Float(q4)
                }
                y += 128
            }
        }
    }
}
