// Lane-parallel versions of the scale searches in QuantPrimitives+Search.swift. Inputs are
// transposed: `x[i]` holds element `i` of every lane. Codes are returned as floats (`L[i]`).
// Each lane reproduces the scalar function bit for bit (see Lanes.swift).

/// Lane-parallel `make_qkx2_quants` / `make_qkx3_quants` (`qkx3: true`). Returns the scale and
/// `the_min` (= −min) per lane; `L[i]` receives codes in `0...nmax`. `Laux` is scratch. Where the
/// reference copies `Laux` into `L` whenever a candidate wins, each lane here remembers the
/// winning `iscale` and the `min` it was used with, and `L` is recomputed once at the end: the
/// same codes from the same float operations.
@inline(__always)
func makeQKXLanes(
    _ n: Int, _ nmax: Int, _ x: UnsafePointer<V8>, _ w: UnsafePointer<V8>,
    _ L: UnsafeMutablePointer<V8>, _ Laux: UnsafeMutablePointer<V8>,
    rmin: Float, rdelta: Float, nstep: Int, useMad: Bool, qkx3: Bool
) -> (scale: V8, theMin: V8) {
    var min = x[0]
    var max = x[0]
    var sumW = w[0]
    var sumX = sumW * x[0]
    for i in 1..<n {
        let xi = x[i]
        min.replace(lanes: xi, where: V8.lt(xi, min))
        max.replace(lanes: xi, where: V8.gt(xi, max))
        sumW += w[i]
        sumX += w[i] * xi
    }
    let dataMin = min
    min.replace(lanes: V8.zero, where: V8.gt(min, V8.zero))
    let degenerate = qkx3 ? V8.le(max, min) : V8.eq(max, min)
    let min0 = min
    var finite = x[0] - x[0]  // 0 while every value is finite, NaN otherwise
    for i in 1..<n { finite += x[i] - x[i] }
    let xFinite = finite.allFinite
    let fmax = Float(nmax)
    let hi = Int32(nmax)
    var iscale = V8(repeating: fmax) / (max - min)
    let iscale0 = iscale
    var scale = V8(repeating: 1) / iscale
    var best = V8.zero
    var won = V8.Mask(repeating: false)  // lanes where some candidate beat the initial codes
    var wonIscale = iscale, wonMin = min
    for i in 0..<n {
        let l = (iscale * (x[i] - min)).roundedClamped(0, hi)
        var diff = scale * l + min - x[i]
        diff = useMad ? diff.magnitude : diff * diff
        best += w[i] * diff
    }
    for step in 0...nstep {
        iscale = V8(repeating: rmin + rdelta * Float(step) + fmax) / (max - min)
        // Float rounding is exact when every |iscale·(x - min)| is below 2^22 (ignoring degenerate
        // lanes, whose results are discarded). qkx3's guarded rounding is always in range.
        var inRange = qkx3
        if !qkx3 && xFinite {
            var spread = (max - min).magnitude
            spread.replace(lanes: (dataMin - min).magnitude, where: V8.gt((dataMin - min).magnitude, spread))
            var bound = iscale.magnitude * spread
            bound.replace(lanes: V8.zero, where: degenerate)
            inRange = !V8.anyTrue(V8.not(V8.lt(bound, V8(repeating: 4_000_000))))
        }
        var sumL = V8.zero
        var sumL2 = V8.zero
        var sumXL = V8.zero
        for i in 0..<n {
            let v = iscale * (x[i] - min)
            let l = qkx3 ? v.guardedRounded(fmax) : v.roundedClamped(0, hi, inRange: inRange)
            Laux[i] = l
            let wl = w[i] * l
            sumL += wl
            sumL2 += wl * l
            sumXL += wl * x[i]
        }
        let D = sumW * sumL2 - sumL * sumL
        let positiveD = V8.gt(D, V8.zero)
        if !V8.anyTrue(positiveD) { continue }
        var thisScale = (sumW * sumXL - sumX * sumL) / D
        var thisMin = (sumL2 * sumX - sumL * sumXL) / D
        let positiveMin = V8.gt(thisMin, V8.zero)
        thisMin.replace(lanes: V8.zero, where: positiveMin)
        thisScale.replace(lanes: sumXL / sumL2, where: positiveMin)
        var cur = V8.zero
        for i in 0..<n {
            var diff = thisScale * Laux[i] + thisMin - x[i]
            diff = useMad ? diff.magnitude : diff * diff
            cur += w[i] * diff
        }
        let accept = V8.and(positiveD, V8.lt(cur, best))
        if V8.anyTrue(accept) {
            won = V8.or(won, accept)
            wonIscale.replace(lanes: iscale, where: accept)
            wonMin.replace(lanes: min, where: accept)  // the min these codes were made with
            best.replace(lanes: cur, where: accept)
            scale.replace(lanes: thisScale, where: accept)
            min.replace(lanes: thisMin, where: accept)
        }
    }
    for i in 0..<n {
        let v = wonIscale * (x[i] - wonMin)
        var l = (iscale0 * (x[i] - min0)).roundedClamped(0, hi)
        l.replace(lanes: qkx3 ? v.guardedRounded(fmax) : v.roundedClamped(0, hi), where: won)
        l.replace(lanes: V8.zero, where: degenerate)
        L[i] = l
    }
    scale.replace(lanes: V8.zero, where: degenerate)
    min.replace(lanes: min0, where: degenerate)
    return (scale, min.negated)
}

/// Lane-parallel `make_qx_quants(n, nmax, x, L, 1, qw)`; `w` is `qw`, or nil for weights `x²`.
/// `L[i]` receives codes in `0..<2·nmax`. The reference re-derives `L` from the winning
/// `iscale` whenever a candidate wins; here each lane remembers its winning `iscale` and `L` is
/// derived once at the end, which gives the same codes.
@inline(__always)
func makeQXLanes(
    _ n: Int, _ nmax: Int, _ x: UnsafePointer<V8>, _ w: UnsafePointer<V8>?, _ L: UnsafeMutablePointer<V8>
) -> V8 {
    var max = V8.zero
    var amax = V8.zero
    var finite = V8.zero  // stays 0 while every value is finite, NaN otherwise
    for i in 0..<n {
        let ax = x[i].magnitude
        let bigger = V8.gt(ax, amax)
        amax.replace(lanes: ax, where: bigger)
        max.replace(lanes: x[i], where: bigger)
        finite += x[i] - x[i]
    }
    let allZero = V8.lt(amax, V8(repeating: 1e-15))
    // |iscale·x| ≤ nmax + 1 when the values are finite (|x| ≤ |max|), so float rounding is exact
    // (lanes that are all zero are discarded at the end).
    let inRange = finite.allFinite
    let fmax = V8(repeating: Float(nmax))
    let lo = Int32(-nmax), hi = Int32(nmax - 1)
    var sumlx = V8.zero
    var suml2 = V8.zero
    var iscale = V8(repeating: Float(-nmax)) / max
    var bestIscale = iscale
    for i in 0..<n {
        let l = (iscale * x[i]).roundedClamped(lo, hi, inRange: inRange)
        let wi = w.map { $0[i] } ?? x[i] * x[i]
        sumlx += wi * x[i] * l
        suml2 += wi * l * l
    }
    var scale = sumlx / suml2
    scale.replace(lanes: V8.zero, where: V8.eq(suml2, V8.zero))
    var best = scale * sumlx
    for step in -9...9 where step != 0 {
        iscale = V8(repeating: -(Float(nmax) + 0.1 * Float(step))) / max
        sumlx = V8.zero
        suml2 = V8.zero
        for i in 0..<n {
            let l = (iscale * x[i]).roundedClamped(lo, hi, inRange: inRange)
            let wi = w.map { $0[i] } ?? x[i] * x[i]
            sumlx += wi * x[i] * l
            suml2 += wi * l * l
        }
        let accept = V8.and(V8.gt(suml2, V8.zero), V8.gt(sumlx * sumlx, best * suml2))
        if V8.anyTrue(accept) {
            bestIscale.replace(lanes: iscale, where: accept)
            let newScale = sumlx / suml2
            scale.replace(lanes: newScale, where: accept)
            best.replace(lanes: newScale * sumlx, where: accept)
        }
    }
    for i in 0..<n {
        var l = (bestIscale * x[i]).roundedClamped(lo, hi, inRange: inRange) + fmax
        l.replace(lanes: V8.zero, where: allZero)
        L[i] = l
    }
    scale.replace(lanes: V8.zero, where: allZero)
    return scale
}

/// Lane-parallel `make_q3_quants(n, nmax, x, L, do_rmse = true)`. `L[i]` receives codes in
/// `0..<2·nmax` (0 for all-zero lanes).
@inline(__always)
func makeQ3Lanes(_ n: Int, _ nmax: Int, _ x: UnsafePointer<V8>, _ L: UnsafeMutablePointer<V8>) -> V8 {
    var max = V8.zero
    var amax = V8.zero
    var finite = V8.zero
    for i in 0..<n {
        let ax = x[i].magnitude
        let bigger = V8.gt(ax, amax)
        amax.replace(lanes: ax, where: bigger)
        max.replace(lanes: x[i], where: bigger)
        finite += x[i] - x[i]
    }
    let allZero = V8.lt(amax, V8(repeating: 1e-15))
    let inRange = finite.allFinite
    let lo = Int32(-nmax), hi = Int32(nmax - 1)
    let iscale = V8(repeating: Float(-nmax)) / max
    var sumlx = V8.zero
    var suml2 = V8.zero
    for i in 0..<n {
        let l = (iscale * x[i]).roundedClamped(lo, hi, inRange: inRange)
        L[i] = l
        let w = x[i] * x[i]
        sumlx += w * x[i] * l
        suml2 += w * l * l
    }
    // A lane whose pass changes nothing would change nothing in later passes either, so running
    // all lanes until none changes equals the reference's per-block early exit.
    for _ in 0..<5 {
        var changed = V8.Mask(repeating: false)
        for i in 0..<n {
            let xi = x[i]
            let li = L[i]
            let w = xi * xi
            let slx0 = sumlx - w * xi * li
            let sl20 = suml2 - w * li * li
            let newL = (xi * sl20 / slx0).roundedClamped(lo, hi)
            let slx = slx0 + w * xi * newL
            let sl2 = sl20 + w * newL * newL
            let better = V8.and(V8.gt(sl2, V8.zero), V8.gt(slx * slx * suml2, sumlx * sumlx * sl2))
            let take = V8.and(V8.and(V8.gt(slx0, V8.zero), V8.ne(newL, li)), better)
            L[i].replace(lanes: newL, where: take)
            sumlx.replace(lanes: slx, where: take)
            suml2.replace(lanes: sl2, where: take)
            changed = V8.or(changed, take)
        }
        if !V8.anyTrue(changed) { break }
    }
    let fmax = V8(repeating: Float(nmax))
    for i in 0..<n {
        var l = L[i] + fmax
        l.replace(lanes: V8.zero, where: allZero)
        L[i] = l
    }
    var scale = sumlx / suml2
    scale.replace(lanes: V8.zero, where: V8.not(V8.gt(suml2, V8.zero)))
    scale.replace(lanes: V8.zero, where: allZero)
    return scale
}
