// Scalar ports of the scale searches in ggml-quants.c. Each one follows the reference statement by
// statement: same loop order, same left-to-right float expressions, same integer truncations.

/// `make_qx_quants(n, nmax, x, L, rmse_type = 1, qw)`: a symmetric scale search with weights
/// `qw` (or `x²` when `qw` is nil). Writes `L[i]` in `0..<2·nmax` and returns the scale.
func makeQXQuants(
    _ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>, _ qw: UnsafePointer<Float>?
) -> Float {
    var max: Float = 0
    var amax: Float = 0
    for i in 0..<n {
        let ax = abs(x[i])
        if ax > amax { amax = ax; max = x[i] }
    }
    if amax < 1e-15 {
        for i in 0..<n { L[i] = 0 }
        return 0
    }
    var iscale = Float(-nmax) / max
    var sumlx: Float = 0
    var suml2: Float = 0
    for i in 0..<n {
        let l = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i])))
        L[i] = Int8(truncatingIfNeeded: l + nmax)
        let w = qw.map { $0[i] } ?? x[i] * x[i]
        let fl = Float(l)
        sumlx += w * x[i] * fl
        suml2 += w * fl * fl
    }
    var scale: Float = suml2 != 0 ? sumlx / suml2 : 0
    var best = scale * sumlx
    for step in -9...9 where step != 0 {
        iscale = -(Float(nmax) + 0.1 * Float(step)) / max
        sumlx = 0
        suml2 = 0
        for i in 0..<n {
            let l = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i])))
            let w = qw.map { $0[i] } ?? x[i] * x[i]
            let fl = Float(l)
            sumlx += w * x[i] * fl
            suml2 += w * fl * fl
        }
        if suml2 > 0 && sumlx * sumlx > best * suml2 {
            for i in 0..<n {
                let l = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i])))
                L[i] = Int8(truncatingIfNeeded: nmax + l)
            }
            scale = sumlx / suml2
            best = scale * sumlx
        }
    }
    return scale
}

/// `make_q3_quants(n, nmax, x, L, do_rmse = true)`: Q3_K's reference search with weights `x²`
/// and a coordinate-descent refinement. Writes `L[i]` in `0..<2·nmax`.
func makeQ3Quants(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>) -> Float {
    var max: Float = 0
    var amax: Float = 0
    for i in 0..<n {
        let ax = abs(x[i])
        if ax > amax { amax = ax; max = x[i] }
    }
    if amax < 1e-15 {
        for i in 0..<n { L[i] = 0 }
        return 0
    }
    let iscale = Float(-nmax) / max
    var sumlx: Float = 0
    var suml2: Float = 0
    for i in 0..<n {
        let l = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i])))
        L[i] = Int8(truncatingIfNeeded: l)
        let w = x[i] * x[i]
        let fl = Float(l)
        sumlx += w * x[i] * fl
        suml2 += w * fl * fl
    }
    for _ in 0..<5 {
        var changed = 0
        for i in 0..<n {
            let w = x[i] * x[i]
            let li = Float(L[i])
            var slx = sumlx - w * x[i] * li
            if slx > 0 {
                var sl2 = suml2 - w * li * li
                let newL = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(x[i] * sl2 / slx)))
                if newL != Int(L[i]) {
                    let fl = Float(newL)
                    slx += w * x[i] * fl
                    sl2 += w * fl * fl
                    if sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        L[i] = Int8(truncatingIfNeeded: newL)
                        sumlx = slx
                        suml2 = sl2
                        changed += 1
                    }
                }
            }
        }
        if changed == 0 { break }
    }
    for i in 0..<n { L[i] = L[i] &+ Int8(truncatingIfNeeded: nmax) }
    return suml2 > 0 ? sumlx / suml2 : 0
}

/// `make_qkx2_quants` (ref paths of Q2_K, Q4_K, Q5_K) and, with `guarded: true`,
/// `make_qkx3_quants` (imatrix paths). Both fit `x ≈ scale·L + min` with `L` in `0...nmax` and
/// `min ≤ 0`; the search over `nstep + 1` candidate scales uses the current best `min`.
/// Returns `(scale, theMin)` with `theMin = -min`.
func makeQKXQuants(
    _ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
    _ L: UnsafeMutablePointer<UInt8>, _ Laux: UnsafeMutablePointer<UInt8>,
    rmin: Float, rdelta: Float, nstep: Int, useMad: Bool, qkx3: Bool
) -> (scale: Float, theMin: Float) {
    var min = x[0]
    var max = x[0]
    var sumW = weights[0]
    var sumX = sumW * x[0]
    for i in 1..<n {
        if x[i] < min { min = x[i] }
        if x[i] > max { max = x[i] }
        let w = weights[i]
        sumW += w
        sumX += w * x[i]
    }
    if min > 0 { min = 0 }
    if qkx3 ? max <= min : max == min {
        for i in 0..<n { L[i] = 0 }
        return (0, -min)
    }
    let fmax = Float(nmax)
    var iscale = fmax / (max - min)
    var scale = 1 / iscale
    var bestError: Float = 0
    for i in 0..<n {
        let l = Swift.max(0, Swift.min(nmax, nearestInt(iscale * (x[i] - min))))
        L[i] = UInt8(truncatingIfNeeded: l)
        var diff = scale * Float(L[i]) + min - x[i]
        diff = useMad ? abs(diff) : diff * diff
        bestError += weights[i] * diff
    }
    for step in 0...nstep {
        iscale = (rmin + rdelta * Float(step) + fmax) / (max - min)
        var sumL: Float = 0
        var sumL2: Float = 0
        var sumXL: Float = 0
        for i in 0..<n {
            let l: Int
            if qkx3 {
                let v = iscale * (x[i] - min)
                l = v > 0 ? nearestInt(v < fmax ? v : fmax) : 0
            } else {
                l = Swift.max(0, Swift.min(nmax, nearestInt(iscale * (x[i] - min))))
            }
            Laux[i] = UInt8(truncatingIfNeeded: l)
            let w = weights[i]
            let fl = Float(l)
            sumL += w * fl
            sumL2 += w * fl * fl
            sumXL += w * fl * x[i]
        }
        let D = sumW * sumL2 - sumL * sumL
        if D > 0 {
            var thisScale = (sumW * sumXL - sumX * sumL) / D
            var thisMin = (sumL2 * sumX - sumL * sumXL) / D
            if thisMin > 0 {
                thisMin = 0
                thisScale = sumXL / sumL2
            }
            var curError: Float = 0
            for i in 0..<n {
                var diff = thisScale * Float(Laux[i]) + thisMin - x[i]
                diff = useMad ? abs(diff) : diff * diff
                curError += weights[i] * diff
            }
            if curError < bestError {
                for i in 0..<n { L[i] = Laux[i] }
                bestError = curError
                scale = thisScale
                min = thisMin
            }
        }
    }
    return (scale, -min)
}

/// `make_qp_quants(n, nmax, x, L, quant_weights)`: a weighted search for one positive scale
/// over non-negative values (the sub-block scales or mins of a super-block).
func makeQPQuants(
    _ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<UInt8>, _ qw: UnsafePointer<Float>
) -> Float {
    var max: Float = 0
    for i in 0..<n { max = max > x[i] ? max : x[i] }
    if max < 1e-15 {
        for i in 0..<n { L[i] = 0 }
        return 0
    }
    let fmax = Float(nmax)
    var iscale = fmax / max
    for i in 0..<n { L[i] = UInt8(truncatingIfNeeded: nearestInt(iscale * x[i])) }
    let scale = 1 / iscale
    var bestMSE: Float = 0
    for i in 0..<n {
        let diff = x[i] - scale * Float(L[i])
        bestMSE += qw[i] * diff * diff
    }
    for step in -4...4 where step != 0 {
        let iscaleStep = (0.1 * Float(step) + fmax) / max
        let scaleStep = 1 / iscaleStep
        var mse: Float = 0
        for i in 0..<n {
            let l = Swift.min(nmax, nearestInt(iscaleStep * x[i]))
            let diff = x[i] - scaleStep * Float(l)
            mse += qw[i] * diff * diff
        }
        if mse < bestMSE {
            bestMSE = mse
            iscale = iscaleStep
        }
    }
    var sumlx: Float = 0
    var suml2: Float = 0
    for i in 0..<n {
        let l = Swift.min(nmax, nearestInt(iscale * x[i]))
        L[i] = UInt8(truncatingIfNeeded: l)
        let fl = Float(l)  // the reference sums the int `l`, not the stored byte
        sumlx += qw[i] * x[i] * fl
        suml2 += qw[i] * fl * fl
    }
    for _ in 0..<5 {
        var changed = 0
        for i in 0..<n {
            let w = qw[i]
            let li = Float(L[i])
            var slx = sumlx - w * x[i] * li
            var sl2 = suml2 - w * li * li
            if slx > 0 && sl2 > 0 {
                let newL = Swift.min(nmax, nearestInt(x[i] * sl2 / slx))
                if newL != Int(L[i]) {
                    let fl = Float(newL)
                    slx += w * x[i] * fl
                    sl2 += w * fl * fl
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        L[i] = UInt8(truncatingIfNeeded: newL)
                        sumlx = slx
                        suml2 = sl2
                        changed += 1
                    }
                }
            }
        }
        if changed == 0 { break }
    }
    return suml2 > 0 ? sumlx / suml2 : 0
}
