// Fast paths of Q2_K, Q3_K and Q6_K: the sixteen 16-value sub-blocks of a super-block run as
// lanes (see Lanes.swift for why this is bit-exact), in two SIMD8 halves: sub-blocks 0–7, then
// 8–15. (One SIMD16 pass spills heavily on SSE2's sixteen registers and is slower.)

typealias V16 = SIMD16<Float>

/// Scratch for one super-block of the 16-wide K-quants, allocated once per row. Each lane array
/// holds 32 vectors: elements 0..<16 of sub-blocks 0–7, then of sub-blocks 8–15.
struct KQuant16Lanes {
    let x: UnsafeMutablePointer<V8>  // transposed input
    let w: UnsafeMutablePointer<V8>  // transposed weights
    let L: UnsafeMutablePointer<V8>  // codes
    let aux: UnsafeMutablePointer<V8>  // scratch codes
    let f: UnsafeMutablePointer<Float>  // weights[256] | scales[16] | mins[16] | sw[16]
    let u: UnsafeMutablePointer<UInt8>  // codes[256] | Ls[16] | Lm[16]
    var weights: UnsafeMutablePointer<Float> { f }
    var scales: UnsafeMutablePointer<Float> { f + 256 }
    var mins: UnsafeMutablePointer<Float> { f + 272 }
    var sw: UnsafeMutablePointer<Float> { f + 288 }
    var codes: UnsafeMutablePointer<UInt8> { u }
    var Ls: UnsafeMutablePointer<UInt8> { u + 256 }
    var Lm: UnsafeMutablePointer<UInt8> { u + 272 }

    static func with(_ body: (KQuant16Lanes) -> Void) {
        withUnsafeTemporaryAllocation(of: V8.self, capacity: 128) { v in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 304) { f in
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 288) { u in
                    let p = v.baseAddress!
                    body(KQuant16Lanes(x: p, w: p + 32, L: p + 64, aux: p + 96, f: f.baseAddress!, u: u.baseAddress!))
                }
            }
        }
    }

    /// Transposes 256 values (16 runs of 16) into two halves of 16 SIMD8 vectors.
    func load(_ src: UnsafePointer<Float>, into t: UnsafeMutablePointer<V8>) {
        transpose(src, stride: 16, n: 16, into: t)
        transpose(src + 128, stride: 16, n: 16, into: t + 16)
    }

    /// Runs a lane search on both halves and joins the per-lane results.
    @inline(__always)
    func search(
        _ body: (_ x: UnsafeMutablePointer<V8>, _ w: UnsafeMutablePointer<V8>, _ L: UnsafeMutablePointer<V8>,
            _ aux: UnsafeMutablePointer<V8>) -> (V8, V8)
    ) -> (V16, V16) {
        let a = body(x, w, L, aux)
        let b = body(x + 16, w + 16, L + 16, aux + 16)
        return (V16(lowHalf: a.0, highHalf: b.0), V16(lowHalf: a.1, highHalf: b.1))
    }

    /// Transposes the importance weights `qw·sqrt(sigma2 + x²)` into `w` and returns their
    /// per-sub-block sums.
    func loadImportanceWeights(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, sigma2: Float) -> V16 {
        importanceWeights(x, qw, sigma2: sigma2, 256, into: weights)
        load(weights, into: w)
        var lo = V8.zero, hi = V8.zero
        for i in 0..<16 {
            lo += w[i]
            hi += w[16 + i]
        }
        return V16(lowHalf: lo, highHalf: hi)
    }

    /// Re-quantizes lanes whose `dd` is non-zero: `L = clamp(nearest_int((x + dm)/dd), lo, hi) - lo`,
    /// then writes all 256 codes in natural order to `codes`.
    func requantize(dd: V16, dm: V16?, lo: Int32, hi: Int32) {
        let offset = V8(repeating: -Float(lo))
        for half in 0..<2 {
            let d = half == 0 ? dd.lowHalf : dd.highHalf
            let m = dm.map { half == 0 ? $0.lowHalf : $0.highHalf }
            let take = V8.not(V8.eq(d, V8.zero))
            for i in (16 * half)..<(16 * half + 16) {
                let v = m.map { x[i] + $0 } ?? x[i]
                L[i].replace(lanes: (v / d).roundedClamped(lo, hi) + offset, where: take)
            }
            untransposeCodes(L + 16 * half, n: 16, stride: 16, into: codes + 128 * half)
        }
    }
}

/// Packs 256 two-bit codes: byte `32h + l` bits `2k..2k+1` hold code `128h + 32k + l`.
@inline(__always)
func pack2Bit(_ L: UnsafePointer<UInt8>, into y: UnsafeMutableRawPointer, at offset: Int) {
    for h in 0..<2 {
        for l in 0..<32 {
            let base = 128 * h + l
            let q = (L[base] & 3) | ((L[base + 32] & 3) << 2) | ((L[base + 64] & 3) << 4) | ((L[base + 96] & 3) << 6)
            y.storeByte(q, at: offset + 32 * h + l)
        }
    }
}

extension Q2_K {
    public static func quantizeRow(
        _ row: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?, into out: UnsafeMutableRawBufferPointer
    ) {
        let blocks = checkQuantizeArguments(row, importance, out)
        guard blocks > 0 else { return }
        let qw = importance?.baseAddress
        KQuant16Lanes.with { s in
            for b in 0..<blocks {
                let x = row.baseAddress! + 256 * b
                let y = out.baseAddress! + 84 * b
                s.load(x, into: s.x)
                if let qw {
                    let sumw = s.loadImportanceWeights(x, qw + 256 * b, sigma2: sumOfSquares(x, 256) / 256)
                    let (sc, m) = s.search {
                        makeQKXLanes(16, 3, $0, $1, $2, $3, rmin: -0.9, rdelta: 0.05, nstep: 36, useMad: false, qkx3: true)
                    }
                    for j in 0..<16 { (s.scales[j], s.mins[j], s.sw[j]) = (sc[j], m[j], sumw[j]) }
                    y.storeFP16(makeQPQuants(16, 15, s.scales, s.Ls, s.sw), at: 80)
                    y.storeFP16(makeQPQuants(16, 15, s.mins, s.Lm, s.sw), at: 82)
                    for j in 0..<16 { y.storeByte(s.Ls[j] | (s.Lm[j] << 4), at: j) }
                } else {
                    for i in 0..<32 { s.w[i] = s.x[i].magnitude }
                    let (sc, m) = s.search {
                        makeQKXLanes(16, 3, $0, $1, $2, $3, rmin: -0.5, rdelta: 0.1, nstep: 15, useMad: true, qkx3: false)
                    }
                    for j in 0..<16 { (s.scales[j], s.mins[j]) = (sc[j], m[j]) }
                    storeScalesRef(y, s)
                }
                let raw = UnsafeRawPointer(y)
                let d = raw.loadFP16(at: 80), dmin = raw.loadFP16(at: 82)
                var dd = V16.zero, dm = V16.zero
                for j in 0..<16 {
                    let sc = raw.byte(at: j)
                    dd[j] = d * Float(sc & 0xF)
                    dm[j] = dmin * Float(sc >> 4)
                }
                s.requantize(dd: dd, dm: dm, lo: 0, hi: 3)
                pack2Bit(s.codes, into: y, at: 16)
            }
        }
    }

    /// `quantize_row_q2_K_ref`'s linear 4-bit quantization of the sub-block scales and mins.
    private static func storeScalesRef(_ y: UnsafeMutableRawPointer, _ s: KQuant16Lanes) {
        var maxScale: Float = 0
        var maxMin: Float = 0
        for j in 0..<16 {
            if s.scales[j] > maxScale { maxScale = s.scales[j] }
            if s.mins[j] > maxMin { maxMin = s.mins[j] }
        }
        let codes = s.Ls
        for j in 0..<16 { codes[j] = 0 }
        if maxScale > 0 {
            let iscale = 15 / maxScale
            for j in 0..<16 { codes[j] = UInt8(truncatingIfNeeded: nearestInt(iscale * s.scales[j])) }
        }
        y.storeFP16(maxScale > 0 ? maxScale / 15 : 0, at: 80)
        if maxMin > 0 {
            let iscale = 15 / maxMin
            for j in 0..<16 { codes[j] |= UInt8(truncatingIfNeeded: nearestInt(iscale * s.mins[j]) << 4) }
        }
        y.storeFP16(maxMin > 0 ? maxMin / 15 : 0, at: 82)
        for j in 0..<16 { y.storeByte(codes[j], at: j) }
    }
}

extension Q3_K {
    public static func quantizeRow(
        _ row: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?, into out: UnsafeMutableRawBufferPointer
    ) {
        let blocks = checkQuantizeArguments(row, importance, out)
        guard blocks > 0 else { return }
        let qw = importance?.baseAddress
        KQuant16Lanes.with { s in
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: 16) { codes6 in
                let Ls = codes6.baseAddress!
                for b in 0..<blocks {
                    let x = row.baseAddress! + 256 * b
                    let y = out.baseAddress! + 110 * b
                    s.load(x, into: s.x)
                    if let qw {
                        let sumw = s.loadImportanceWeights(x, qw + 256 * b, sigma2: 2 * sumOfSquares(x, 256) / 256)
                        let (sc, _) = s.search { x, w, L, _ in (makeQXLanes(16, 4, x, w, L), V8.zero) }
                        for j in 0..<16 { (s.scales[j], s.sw[j]) = (sc[j], sumw[j]) }
                        let dBlock = makeQXQuants(16, 32, s.scales, Ls, s.sw)
                        storeScales(Ls, y)
                        y.storeFP16(dBlock, at: 108)
                    } else {
                        let (sc, _) = s.search { x, _, L, _ in (makeQ3Lanes(16, 4, x, L), V8.zero) }
                        var maxScale: Float = 0
                        var amax: Float = 0
                        for j in 0..<16 where abs(sc[j]) > amax {
                            amax = abs(sc[j])
                            maxScale = sc[j]
                        }
                        if maxScale != 0 {
                            let iscale = -32 / maxScale
                            for j in 0..<16 {
                                let l = Int(Int8(truncatingIfNeeded: nearestInt(iscale * sc[j])))
                                Ls[j] = Int8(Swift.max(-32, Swift.min(31, l)) + 32)
                            }
                            storeScales(Ls, y)
                            y.storeFP16(1 / iscale, at: 108)
                        } else {
                            for j in 0..<12 { y.storeByte(0, at: 96 + j) }
                            y.storeFP16(0, at: 108)
                        }
                    }
                    let raw = UnsafeRawPointer(y)
                    let d = raw.loadFP16(at: 108)
                    let packed = (raw + 96).assumingMemoryBound(to: UInt8.self)
                    var dd = V16.zero
                    for j in 0..<16 { dd[j] = d * Float(scaleQ3K(j, packed)) }
                    s.requantize(dd: dd, dm: nil, lo: -4, hi: 3)
                    for m in 0..<32 {
                        var hm: UInt8 = 0
                        for bit in 0..<8 where s.codes[32 * bit + m] > 3 { hm |= 1 << UInt8(bit) }
                        y.storeByte(hm, at: m)
                    }
                    pack2Bit(s.codes, into: y, at: 32)
                }
            }
        }
    }
}

extension Q6_K {
    public static func quantizeRow(
        _ row: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>?, into out: UnsafeMutableRawBufferPointer
    ) {
        let blocks = checkQuantizeArguments(row, importance, out)
        guard blocks > 0 else { return }
        let qw = importance?.baseAddress
        KQuant16Lanes.with { s in
            for b in 0..<blocks {
                let x = row.baseAddress! + 256 * b
                let y = out.baseAddress! + 210 * b
                s.load(x, into: s.x)
                if let qw { s.load(qw + 256 * b, into: s.w) }
                let (sc, _) = s.search { x, w, L, aux in
                    (makeQXLanes(16, 32, x, qw == nil ? nil : UnsafePointer(w), L), V8.zero)
                }
                var maxScale: Float = 0
                var maxAbsScale: Float = 0
                for j in 0..<16 where abs(sc[j]) > maxAbsScale {
                    maxAbsScale = abs(sc[j])
                    maxScale = sc[j]
                }
                if maxAbsScale < 1e-15 {
                    for i in 0..<210 { y.storeByte(0, at: i) }
                    continue
                }
                let iscale = -128 / maxScale
                y.storeFP16(1 / iscale, at: 208)
                let d = UnsafeRawPointer(y).loadFP16(at: 208)
                var dd = V16.zero
                for j in 0..<16 {
                    let code = Int8(truncatingIfNeeded: Swift.min(127, nearestInt(iscale * sc[j])))
                    y.storeByte(UInt8(bitPattern: code), at: 192 + j)
                    dd[j] = d * Float(code)
                }
                s.requantize(dd: dd, dm: nil, lo: -32, hi: 31)
                packQ6K(s.codes, y)
            }
        }
    }
}

/// Packs 256 codes in `0...63` into Q6_K's `ql[128]` and `qh[64]`.
@inline(__always)
func packQ6K(_ L: UnsafePointer<UInt8>, _ y: UnsafeMutableRawPointer) {
    for h in 0..<2 {
        for l in 0..<32 {
            let base = 128 * h + l
            let a = L[base], b = L[base + 32], c = L[base + 64], e = L[base + 96]
            y.storeByte((a & 0xF) | ((c & 0xF) << 4), at: 64 * h + l)
            y.storeByte((b & 0xF) | ((e & 0xF) << 4), at: 64 * h + l + 32)
            y.storeByte((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6), at: 128 + 32 * h + l)
        }
    }
}
