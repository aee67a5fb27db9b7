/// Q5_0: 32 values in 22 bytes, `d: fp16 | qh: u32 LE | qs[16]`. `qs` holds the low 4 bits
/// (packed as in Q4_0); bit `k` of `qh` is bit 4 of `q_k`.
///
/// Without importance (`quantize_row_q5_0_ref`): `d = max / -16` (`max` = value of largest
/// magnitude, first on ties), `q = min(31, trunc(x/d + 16.5))`. With importance
/// (`quantize_row_q5_0_impl`): `d = make_qx_quants(32, 16, x, w)`, `w = qw·sqrt(mean(x²) + x²)`
/// over the whole row. Dequantization: `y = (q - 16)·d`.
public enum Q5_0: BlockCodec {
    public static var type: GGMLType { .q5_0 }

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
            for b in 0..<blocks { quantizeBlockRef(x + 32 * b, o + 22 * b) }
            return
        }
        let sigma2 = sumOfSquares(x, row.count) / Float(row.count)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { w in
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: 32) { L in
                for b in 0..<blocks {
                    let xb = x + 32 * b
                    importanceWeights(xb, qw + 32 * b, sigma2: sigma2, 32, into: w.baseAddress!)
                    let d = makeQXQuants(32, 16, xb, L.baseAddress!, w.baseAddress!)
                    let y = o + 22 * b
                    y.storeFP16(d, at: 0)
                    var qh: UInt32 = 0
                    for j in 0..<16 {
                        y.storeByte(packLow5(UInt8(bitPattern: L[j]), UInt8(bitPattern: L[j + 16]), j, &qh), at: 6 + j)
                    }
                    y.storeBytes(of: qh.littleEndian, toByteOffset: 2, as: UInt32.self)
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
        let d = max / -16
        let id: Float = d != 0 ? 1 / d : 0
        y.storeFP16(d, at: 0)
        var qh: UInt32 = 0
        for j in 0..<16 {
            let q0 = legacyCode(x[j] * id + 16.5, limit: 31)
            let q1 = legacyCode(x[j + 16] * id + 16.5, limit: 31)
            y.storeByte(packLow5(q0, q1, j, &qh), at: 6 + j)
        }
        y.storeBytes(of: qh.littleEndian, toByteOffset: 2, as: UInt32.self)
    }

    public static func dequantizeRow(_ data: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        let blocks = checkDequantizeArguments(data, out)
        guard blocks > 0 else { return }
        let p = data.baseAddress!
        let y = out.baseAddress!
        for b in 0..<blocks {
            let blk = p + 22 * b
            let d = blk.loadFP16(at: 0)
            let qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
            for j in 0..<16 {
                let (q0, q1) = unpack5(blk.byte(at: 6 + j), qh, j)
                y[32 * b + j] = Float(Int(q0) - 16) * d
                y[32 * b + j + 16] = Float(Int(q1) - 16) * d
            }
        }
    }
}

/// Packs the low nibbles of codes `j` and `j + 16` into one byte and ORs their fifth bits into
/// bits `j` and `j + 16` of `qh` (Q5_0/Q5_1 layout).
@inline(__always)
func packLow5(_ q0: UInt8, _ q1: UInt8, _ j: Int, _ qh: inout UInt32) -> UInt8 {
    qh |= UInt32((q0 & 0x10) >> 4) << UInt32(j)
    qh |= UInt32((q1 & 0x10) >> 4) << UInt32(j + 16)
    return (q0 & 0x0F) | ((q1 & 0x0F) << 4)
}

/// The 5-bit codes `j` and `j + 16` of a Q5_0/Q5_1 block.
@inline(__always)
func unpack5(_ byte: UInt8, _ qh: UInt32, _ j: Int) -> (UInt8, UInt8) {
    let h0 = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
    let h1 = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
    return ((byte & 0x0F) | h0, (byte >> 4) | h1)
}
