/// Q8_0: 32 values in 34 bytes, `d: fp16 | qs: int8[32]`.
///
/// `d = max|x| / 127`, `q = roundf(x / d)` (half away from zero), `y = d·q`.
/// The importance matrix is ignored (as in `quantize_q8_0`); this is `quantize_row_q8_0_ref`.
public enum Q8_0: BlockCodec {
    public static var type: GGMLType { .q8_0 }

    public static func quantizeRow(
        _ row: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?, into out: UnsafeMutableRawBufferPointer
    ) {
        let blocks = checkQuantizeArguments(row, importance, out)
        guard blocks > 0 else { return }
        let x = row.baseAddress!
        let o = out.baseAddress!
        quantizeBlocksSIMD(x, o, count: blocks)
    }

    /// The scalar port of `quantize_row_q8_0_ref` (used to cross-check the vectorised block).
    static func quantizeRowReference(
        _ row: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?, into out: UnsafeMutableRawBufferPointer
    ) {
        let blocks = checkQuantizeArguments(row, importance, out)
        guard blocks > 0 else { return }
        for b in 0..<blocks {
            quantizeBlock(row.baseAddress! + 32 * b, out.baseAddress! + 34 * b)
        }
    }

    @inline(__always)
    static func quantizeBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for j in 0..<32 {
            let a = abs(x[j])
            amax = amax > a ? amax : a
        }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        y.storeFP16(d, at: 0)
        for j in 0..<32 {
            let q = truncatingToInt32(roundHalfAway(x[j] * id))
            y.storeByte(UInt8(truncatingIfNeeded: q), at: 2 + j)
        }
    }

    public static func dequantizeRow(_ data: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        let blocks = checkDequantizeArguments(data, out)
        guard blocks > 0 else { return }
        let p = data.baseAddress!
        let y = out.baseAddress!
        for b in 0..<blocks {
            let blk = p + 34 * b
            let d = blk.loadFP16(at: 0)
            for j in 0..<32 {
                y[32 * b + j] = Float(Int8(bitPattern: blk.byte(at: 2 + j))) * d
            }
        }
    }
}
