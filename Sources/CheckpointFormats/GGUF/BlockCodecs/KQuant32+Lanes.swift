// Fast path shared by Q4_K and Q5_K: the eight 32-value sub-blocks of a super-block run as the
// eight lanes of a SIMD8 (see Lanes.swift for why this is bit-exact).

/// Scratch for one super-block of the 32-wide K-quants, allocated once per row.
struct KQuant32Lanes {
    let x: UnsafeMutablePointer<V8>  // [32] transposed input
    let w: UnsafeMutablePointer<V8>  // [32] transposed weights
    let L: UnsafeMutablePointer<V8>  // [32] codes
    let aux: UnsafeMutablePointer<V8>  // [32] scratch codes
    let f: UnsafeMutablePointer<Float>  // weights[256] | scales[8] | mins[8] | sw[8]
    let u: UnsafeMutablePointer<UInt8>  // codes[256] | Ls[8] | Lm[8]

    static func with(_ body: (KQuant32Lanes) -> Void) {
        withUnsafeTemporaryAllocation(of: V8.self, capacity: 128) { v in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 280) { f in
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 272) { u in
                    let p = v.baseAddress!
                    body(KQuant32Lanes(x: p, w: p + 32, L: p + 64, aux: p + 96, f: f.baseAddress!, u: u.baseAddress!))
                }
            }
        }
    }

    /// Computes `d`, `dmin` and the 12 scale bytes (written at offsets 0, 2, 4 of `y`) and the
    /// final codes in `0...nmax`, returned in natural element order.
    func quantize(
        _ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?, nmax: Int, clampCodes: Bool, _ y: UnsafeMutableRawPointer
    ) -> UnsafeMutablePointer<UInt8> {
        let weights = f, scales = f + 256, mins = f + 264, sw = f + 272
        let codes = u, Ls = u + 256, Lm = u + 264
        transpose(x, stride: 32, n: 32, into: self.x)
        let d: Float, dmin: Float
        if let qw {
            let sigma2 = 2 * sumOfSquares(x, 256) / 256
            importanceWeights(x, qw, sigma2: sigma2, 256, into: weights)
            transpose(UnsafePointer(weights), stride: 32, n: 32, into: w)
            var sumw = V8.zero
            for i in 0..<32 { sumw += w[i] }
            let (s, m) = makeQKXLanes(
                32, nmax, self.x, w, L, aux, rmin: -0.9, rdelta: 0.05, nstep: 36, useMad: false, qkx3: true)
            for j in 0..<8 { (scales[j], mins[j], sw[j]) = (s[j], m[j], sumw[j]) }
            d = makeQPQuants(8, 63, scales, Ls, sw)
            dmin = makeQPQuants(8, 63, mins, Lm, sw)
            if clampCodes {
                for j in 0..<8 { (Ls[j], Lm[j]) = (Swift.min(63, Ls[j]), Swift.min(63, Lm[j])) }
            }
        } else {
            var sumX2 = V8.zero
            for i in 0..<32 { sumX2 += self.x[i] * self.x[i] }
            var avX = V8.zero
            for j in 0..<8 { avX[j] = (sumX2[j] / 32).squareRoot() }
            for i in 0..<32 { w[i] = avX + self.x[i].magnitude }
            let (s, m) = makeQKXLanes(
                32, nmax, self.x, w, L, aux, rmin: nmax == 15 ? -1 : -0.5, rdelta: 0.1, nstep: nmax == 15 ? 20 : 15,
                useMad: false, qkx3: false)
            var maxScale: Float = 0
            var maxMin: Float = 0
            for j in 0..<8 {
                if s[j] > maxScale { maxScale = s[j] }
                if m[j] > maxMin { maxMin = m[j] }
            }
            let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
            let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
            for j in 0..<8 {
                Ls[j] = Swift.min(63, UInt8(truncatingIfNeeded: nearestInt(invScale * s[j])))
                Lm[j] = Swift.min(63, UInt8(truncatingIfNeeded: nearestInt(invMin * m[j])))
            }
            d = maxScale / 63
            dmin = maxMin / 63
        }
        y.storeFP16(d, at: 0)
        y.storeFP16(dmin, at: 2)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 12) { packed in
            packScaleMinK4(Ls, Lm, into: packed.baseAddress!)
            for j in 0..<12 { y.storeByte(packed[j], at: 4 + j) }
        }
        // Re-quantize with the stored fp16 scales; keep the search's codes where a scale is zero.
        let raw = UnsafeRawPointer(y)
        let dq = raw.loadFP16(at: 0), mq = raw.loadFP16(at: 2)
        let s6 = (raw + 4).assumingMemoryBound(to: UInt8.self)
        var dd = V8.zero, dm = V8.zero
        for j in 0..<8 {
            let (sc, m) = scaleMinK4(j, s6)
            dd[j] = dq * Float(sc)
            dm[j] = mq * Float(m)
        }
        let requant = V8.not(V8.eq(dd, V8.zero))
        let hi = Int32(nmax)
        for i in 0..<32 {
            L[i].replace(lanes: ((self.x[i] + dm) / dd).roundedClamped(0, hi), where: requant)
        }
        untransposeCodes(L, n: 32, stride: 32, into: codes)
        return codes
    }
}
