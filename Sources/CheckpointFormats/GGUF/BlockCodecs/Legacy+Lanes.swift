// Fast paths of the 32-value legacy types. Without importance each block is quantized on its own
// (`quantize_row_*_ref`, vectorised in LegacyBlock+SIMD.swift). With importance the per-block
// searches run eight blocks at a time as the lanes of a SIMD8 (see Lanes.swift for why this is
// bit-exact); a row's last group may have fewer blocks, and its unused lanes hold zeros.

/// Runs `body(group, count, codes, scales, mins)` for each group of up to eight blocks of a row:
/// `codes` holds `32·count` codes in natural order, `scales`/`mins` the per-lane results.
/// `nmax` 8 or 16 selects `make_qx_quants` (symmetric, `mins` unused); 15 or 31 selects
/// `make_qkx3_quants(32, nmax, x, w, -0.9, 0.05, 36)` with `mins` = `the_min`.
@inline(__always)
func quantizeLegacyRowLanes(
    _ row: UnsafeBufferPointer<Float>, _ qw: UnsafePointer<Float>, symmetric: Bool, nmax: Int,
    _ body: (_ firstBlock: Int, _ count: Int, _ codes: UnsafePointer<UInt8>, _ scales: V8, _ mins: V8) -> Void
) {
    let x = row.baseAddress!
    let n = row.count
    let blocks = n / 32
    let sigma2 = sumOfSquares(x, n) / Float(n)
    withUnsafeTemporaryAllocation(of: V8.self, capacity: 128) { v in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { weights in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { codes in
                let xT = v.baseAddress!, wT = xT + 32, L = xT + 64, aux = xT + 96
                let w = weights.baseAddress!
                var first = 0
                while first < blocks {
                    let count = Swift.min(8, blocks - first)
                    let xs = x + 32 * first
                    importanceWeights(xs, qw + 32 * first, sigma2: sigma2, 32 * count, into: w)
                    transpose(xs, stride: 32, n: 32, count: count, into: xT)
                    transpose(UnsafePointer(w), stride: 32, n: 32, count: count, into: wT)
                    let scales: V8, mins: V8
                    if symmetric {
                        scales = makeQXLanes(32, nmax, xT, wT, L)
                        mins = V8.zero
                    } else {
                        (scales, mins) = makeQKXLanes(
                            32, nmax, xT, wT, L, aux, rmin: -0.9, rdelta: 0.05, nstep: 36, useMad: false, qkx3: true)
                    }
                    untransposeCodes(L, n: 32, stride: 32, count: count, into: codes.baseAddress!)
                    body(first, count, codes.baseAddress!, scales, mins)
                    first += count
                }
            }
        }
    }
}

extension Q4_0 {
    public static func quantizeRow(
        _ row: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?, into out: UnsafeMutableRawBufferPointer
    ) {
        let blocks = checkQuantizeArguments(row, importance, out)
        guard blocks > 0 else { return }
        let o = out.baseAddress!
        guard let qw = importance?.baseAddress else {
            quantizeBlocksSIMD(row.baseAddress!, o, count: blocks)
            return
        }
        quantizeLegacyRowLanes(row, qw, symmetric: true, nmax: 8) { first, count, L, scales, _ in
            for k in 0..<count {
                let y = o + 18 * (first + k)
                let q = L + 32 * k
                y.storeFP16(scales[k], at: 0)
                for j in 0..<16 { y.storeByte(q[j] | (q[j + 16] << 4), at: 2 + j) }
            }
        }
    }
}

extension Q4_1 {
    public static func quantizeRow(
        _ row: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?, into out: UnsafeMutableRawBufferPointer
    ) {
        let blocks = checkQuantizeArguments(row, importance, out)
        guard blocks > 0 else { return }
        let o = out.baseAddress!
        guard let qw = importance?.baseAddress else {
            quantizeBlocksSIMD(row.baseAddress!, o, count: blocks)
            return
        }
        quantizeLegacyRowLanes(row, qw, symmetric: false, nmax: 15) { first, count, L, scales, mins in
            for k in 0..<count {
                let y = o + 20 * (first + k)
                let q = L + 32 * k
                y.storeFP16(scales[k], at: 0)
                y.storeFP16(-mins[k], at: 2)
                for j in 0..<16 { y.storeByte(q[j] | (q[j + 16] << 4), at: 4 + j) }
            }
        }
    }
}

extension Q5_0 {
    public static func quantizeRow(
        _ row: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?, into out: UnsafeMutableRawBufferPointer
    ) {
        let blocks = checkQuantizeArguments(row, importance, out)
        guard blocks > 0 else { return }
        let o = out.baseAddress!
        guard let qw = importance?.baseAddress else {
            quantizeBlocksSIMD(row.baseAddress!, o, count: blocks)
            return
        }
        quantizeLegacyRowLanes(row, qw, symmetric: true, nmax: 16) { first, count, L, scales, _ in
            for k in 0..<count {
                let y = o + 22 * (first + k)
                let q = L + 32 * k
                y.storeFP16(scales[k], at: 0)
                var qh: UInt32 = 0
                for j in 0..<16 { y.storeByte(packLow5(q[j], q[j + 16], j, &qh), at: 6 + j) }
                y.storeBytes(of: qh.littleEndian, toByteOffset: 2, as: UInt32.self)
            }
        }
    }
}

extension Q5_1 {
    public static func quantizeRow(
        _ row: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?, into out: UnsafeMutableRawBufferPointer
    ) {
        let blocks = checkQuantizeArguments(row, importance, out)
        guard blocks > 0 else { return }
        let o = out.baseAddress!
        guard let qw = importance?.baseAddress else {
            quantizeBlocksSIMD(row.baseAddress!, o, count: blocks)
            return
        }
        quantizeLegacyRowLanes(row, qw, symmetric: false, nmax: 31) { first, count, L, scales, mins in
            for k in 0..<count {
                let y = o + 24 * (first + k)
                let q = L + 32 * k
                y.storeFP16(scales[k], at: 0)
                y.storeFP16(-mins[k], at: 2)
                var qh: UInt32 = 0
                for j in 0..<16 { y.storeByte(packLow5(q[j], q[j + 16], j, &qh), at: 8 + j) }
                y.storeBytes(of: qh.littleEndian, toByteOffset: 4, as: UInt32.self)
            }
        }
    }
}
