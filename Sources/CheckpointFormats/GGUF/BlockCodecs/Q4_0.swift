/// Q4_0: 32 values in 18 bytes, `d: fp16 | qs[16]`; byte `j` holds `q_j` (low nibble) and
/// `q_{j+16}` (high nibble).
///
/// Without importance (`quantize_row_q4_0_ref`): `d = max / -8` where `max` is the value of largest
/// magnitude (first on ties), `q = min(15, trunc(x/d + 8.5))`. With importance
/// (`quantize_row_q4_0_impl`): `d = make_qx_quants(32, 8, x, w)` with
/// `w = qw·sqrt(mean(x²) + x²)` over the whole row. Dequantization: `y = (q - 8)·d`.
public enum Q4_0: BlockCodec {
    public static var type: GGMLType { .q4_0 }

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
            for b in 0..<blocks { quantizeBlockRef(x + 32 * b, o + 18 * b) }
            return
        }
        let sigma2 = sumOfSquares(x, row.count) / Float(row.count)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { w in
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: 32) { L in
                for b in 0..<blocks {
                    let xb = x + 32 * b
                    importanceWeights(xb, qw + 32 * b, sigma2: sigma2, 32, into: w.baseAddress!)
                    let d = makeQXQuants(32, 8, xb, L.baseAddress!, w.baseAddress!)
                    let y = o + 18 * b
                    y.storeFP16(d, at: 0)
                    for j in 0..<16 {
                        y.storeByte(UInt8(bitPattern: L[j]) | (UInt8(bitPattern: L[j + 16]) << 4), at: 2 + j)
                    }
                }
            }
        }
    }

    @inline(__always)
    static func quantizeBlockRef(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var amax: Float = 0
        var max: Float = 0
        for j in 0..<32 where amax < abs(x[j]) {
            amax = abs(x[j])
            max = x[j]
        }
        let d = max / -8
        let id: Float = d != 0 ? 1 / d : 0
        y.storeFP16(d, at: 0)
        for j in 0..<16 {
            let q0 = legacyCode(x[j] * id + 8.5, limit: 15)
            let q1 = legacyCode(x[j + 16] * id + 8.5, limit: 15)
            y.storeByte(q0 | (q1 << 4), at: 2 + j)
        }
    }

    public static func dequantizeRow(_ data: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        let blocks = checkDequantizeArguments(data, out)
        guard blocks > 0 else { return }
        let p = data.baseAddress!
        let y = out.baseAddress!
        for b in 0..<blocks {
            let blk = p + 18 * b
            let d = blk.loadFP16(at: 0)
            for j in 0..<16 {
                let q = blk.byte(at: 2 + j)
                y[32 * b + j] = Float(Int(q & 0xF) - 8) * d
                y[32 * b + j + 16] = Float(Int(q >> 4) - 8) * d
            }
        }
    }
}

/// The legacy quantizers' `MIN(limit, (int8_t)(v))` stored into a `uint8_t`.
@inline(__always)
func legacyCode(_ v: Float, limit: Int8) -> UInt8 {
    let t = Int8(truncatingIfNeeded: truncatingToInt32(v))
    return UInt8(bitPattern: limit < t ? limit : t)
}
