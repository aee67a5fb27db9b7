/// Q3_K: 256 values in 110 bytes, `hmask[32] | qs[64] | scales[12] | d: fp16`.
///
/// Sixteen sub-blocks of 16 with 6-bit signed scales `sc` (stored biased by 32: low nibble in
/// `scales[j]` or the high nibble of `scales[j-8]`, top two bits in `scales[8 + j%4]` at bit
/// `2·(j/4)`). Each 3-bit code keeps its low 2 bits in `qs` (packed as in Q2_K) and its high bit in
/// `hmask[k % 32]` bit `k / 32`. `y = d·sc·(q - 4)`.
///
/// Without importance (`quantize_row_q3_K_ref`): `make_q3_quants(16, 4, x, do_rmse)` per sub-block,
/// scales quantized linearly with `iscale = -32/max_scale`. With importance
/// (`quantize_row_q3_K_impl`): `make_qx_quants(16, 4, x, w)` with `w = qw·sqrt(2Σx²/256 + x²)`,
/// then `d = make_qx_quants(16, 32, scales, Σw)`.
public enum Q3_K: BlockCodec {
    public static var type: GGMLType { .q3_K }

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
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 48) { f in
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256 + 16) { l in
                let scales = f.baseAddress!, weights = scales + 16, sw = scales + 32
                let L = l.baseAddress!, Ls = L + 256
                for b in 0..<blocks {
                    let xb = x + 256 * b
                    let y = o + 110 * b
                    if let qw {
                        let qwb = qw + 256 * b
                        let sigma2 = 2 * sumOfSquares(xb, 256) / 256
                        for j in 0..<16 {
                            importanceWeights(xb + 16 * j, qwb + 16 * j, sigma2: sigma2, 16, into: weights)
                            var sumw: Float = 0
                            for i in 0..<16 { sumw += weights[i] }
                            sw[j] = sumw
                            scales[j] = makeQXQuants(16, 4, xb + 16 * j, L + 16 * j, weights)
                        }
                        let dBlock = makeQXQuants(16, 32, scales, Ls, sw)
                        storeScales(Ls, y)
                        y.storeFP16(dBlock, at: 108)
                    } else {
                        quantizeScalesRef(xb, y, L, Ls, scales)
                    }
                    requantizeAndPack(xb, y, L)
                }
            }
        }
    }

    /// The `_ref` scale step: per-sub-block `make_q3_quants`, then a linear 6-bit scale code.
    static func quantizeScalesRef(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<Int8>,
        _ codes: UnsafeMutablePointer<Int8>, _ scales: UnsafeMutablePointer<Float>
    ) {
        var maxScale: Float = 0
        var amax: Float = 0
        for j in 0..<16 {
            scales[j] = makeQ3Quants(16, 4, x + 16 * j, L + 16 * j)
            let a = abs(scales[j])
            if a > amax { amax = a; maxScale = scales[j] }
        }
        if maxScale != 0 {
            let iscale = -32 / maxScale
            for j in 0..<16 {
                let l = Int(Int8(truncatingIfNeeded: nearestInt(iscale * scales[j])))
                codes[j] = Int8(Swift.max(-32, Swift.min(31, l)) + 32)
            }
            storeScales(codes, y)
            y.storeFP16(1 / iscale, at: 108)
        } else {
            for j in 0..<12 { y.storeByte(0, at: 96 + j) }
            y.storeFP16(0, at: 108)
        }
    }

    @inline(__always)
    static func storeScales(_ codes: UnsafePointer<Int8>, _ y: UnsafeMutableRawPointer) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 12) { s in
            packScalesQ3K(codes, into: s.baseAddress!)
            for j in 0..<12 { y.storeByte(s[j], at: 96 + j) }
        }
    }

    /// Re-quantizes with the stored scales (keeping `L` where a scale is zero), then writes
    /// `hmask` and `qs`. `L` holds codes in 0...7.
    @inline(__always)
    static func requantizeAndPack(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<Int8>) {
        let raw = UnsafeRawPointer(y)
        let d = raw.loadFP16(at: 108)
        let s = raw.advanced(by: 96).assumingMemoryBound(to: UInt8.self)
        for j in 0..<16 {
            let dd = d * Float(scaleQ3K(j, s))
            if dd == 0 { continue }
            for i in 0..<16 {
                let l = Swift.max(-4, Swift.min(3, nearestInt(x[16 * j + i] / dd)))
                L[16 * j + i] = Int8(l + 4)
            }
        }
        for m in 0..<32 {
            var hm: UInt8 = 0
            for bit in 0..<8 where L[32 * bit + m] > 3 {
                hm |= 1 << UInt8(bit)
                L[32 * bit + m] -= 4
            }
            y.storeByte(hm, at: m)
        }
        for h in 0..<2 {
            for l in 0..<32 {
                let base = 128 * h + l
                let q = UInt8(truncatingIfNeeded: L[base] | (L[base + 32] << 2) | (L[base + 64] << 4) | (L[base + 96] << 6))
                y.storeByte(q, at: 32 + 32 * h + l)
            }
        }
    }

    public static func dequantizeRow(_ data: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        let blocks = checkDequantizeArguments(data, out)
        guard blocks > 0 else { return }
        let p = data.baseAddress!
        var y = out.baseAddress!
        for b in 0..<blocks {
            let blk = p + 110 * b
            let dAll = blk.loadFP16(at: 108)
            let s = blk.advanced(by: 96).assumingMemoryBound(to: UInt8.self)
            var sub = 0
            var mask: UInt8 = 1
            for h in 0..<2 {
                let q = blk + 32 + 32 * h
                for shift in stride(from: 0, to: 8, by: 2) {
                    for half in 0..<2 {
                        let dl = dAll * Float(scaleQ3K(sub, s))
                        sub += 1
                        for l in 0..<16 {
                            let low = Int((q.byte(at: 16 * half + l) >> UInt8(shift)) & 3)
                            let high = blk.byte(at: 16 * half + l) & mask != 0 ? 0 : 4
                            y.pointee = dl * Float(low - high)
                            y += 1
                        }
                    }
                    mask <<= 1
                }
            }
        }
    }
}
