import TensorCore
import CheckpointFormats

/// The Optimal BERT Surgeon, one shot (Kurtic et al. 2022; algorithms.md §4.4): second-order pruning
/// with a block-diagonal empirical Fisher built from per-sample gradients.
///
/// The weights are taken flattened (row-major) and cut into blocks of `blockSize` consecutive
/// weights (the last one shorter). Per block, with `g_i` the block's part of sample `i`'s gradient
/// (`m` samples): `F = λI + (1/m) Σ_i g_i g_iᵀ`, inverted without a factorization by the Woodbury
/// (Sherman–Morrison) recursion `F₀⁻¹ = I/λ`, `F_i⁻¹ = F_{i−1}⁻¹ − v vᵀ / (m + g_iᵀ v)` with
/// `v = F_{i−1}⁻¹ g_i` (float64, O(m·B²) per block).
/// - Mask: the saliency `ρ_q = w_q² / (2[F⁻¹]_qq)`; unstructured removes exactly `round(p·n)` of
///   the lowest over the tensor (ties to the earlier weight), N:M the `M − N` lowest of every group
///   of `M` along each row.
/// - Update: all weights `Q` a block loses are removed together with block OBS's optimal update
///   `δw = −F⁻¹[:, Q] ([F⁻¹]_QQ)⁻¹ w_Q` (exact for the quadratic model; sparseml sums single-weight
///   updates instead), then `w_Q` is set to exactly 0.
/// Memory: one `B×B` inverse per worker; the inverses are computed twice (scores, then updates)
/// rather than stored (`n·B` doubles).
public struct FisherPruner: Sendable {
    public let target: PruningTarget
    public let blockSize: Int
    public let damping: Double

    public init(target: PruningTarget, blockSize: Int = 50, damping: Double = 1e-7) {
        self.target = target
        self.blockSize = blockSize
        self.damping = damping
    }

    /// The pruned weights (masked entries exactly 0) and the mask, for `values` of `shape` and
    /// `gradients` row-major `[samples, values.count]`.
    public func prune(_ values: [Float], shape: Shape, gradients: [Float], samples: Int, threadCount: Int = 1) -> (values: [Float], mask: [Bool]) {
        let n = values.count
        precondition(samples > 0 && gradients.count == samples * n, "oBERT: sizes do not fit")
        let blocks = (n + blockSize - 1) / blockSize
        // Pass 1: the inverse diagonal, for the saliencies.
        var diagonal = [Double](repeating: 0, count: n)
        diagonal.withUnsafeMutableBufferPointer { diagonal in
            ParallelLoop.forEachRange(count: blocks, threadCount: threadCount) { range in
                for b in range {
                    let start = b * blockSize, size = min(blockSize, n - start)
                    let inverse = blockInverse(start: start, size: size, n: n, gradients: gradients, samples: samples)
                    for i in 0..<size { diagonal[start + i] = inverse[i * size + i] }
                }
            }
        }
        var scores = [Float](repeating: 0, count: n)
        for i in 0..<n { scores[i] = Float(Double(values[i]) * Double(values[i]) / (2 * diagonal[i])) }
        var mask = [Bool](repeating: false, count: n)
        scores.withUnsafeBufferPointer { s in
            mask.withUnsafeMutableBufferPointer { mask in
                if case .nOfM(let kept, let m) = target.pattern {
                    let columns = shape.dimensions.last ?? n
                    for start in stride(from: 0, to: n, by: max(columns, 1)) {
                        PruningTarget.markGroups(UnsafeBufferPointer(rebasing: s[start..<(start + columns)]), kept: kept, group: m,
                                                 into: UnsafeMutableBufferPointer(rebasing: mask[start..<(start + columns)]))
                    }
                } else {
                    SmallestScores.mark(s, count: target.prunedCount(of: n), into: mask)
                }
            }
        }
        // Pass 2: per block, the joint OBS update of the weights it loses.
        var w = values
        w.withUnsafeMutableBufferPointer { w in
            ParallelLoop.forEachRange(count: blocks, threadCount: threadCount) { range in
                for b in range {
                    let start = b * blockSize, size = min(blockSize, n - start)
                    let removed = (0..<size).filter { mask[start + $0] }
                    guard !removed.isEmpty else { continue }
                    let inverse = blockInverse(start: start, size: size, n: n, gradients: gradients, samples: samples)
                    let k = removed.count
                    var a = [Double](repeating: 0, count: k * k)
                    for (p, i) in removed.enumerated() { for (q, j) in removed.enumerated() { a[p * k + q] = inverse[i * size + j] } }
                    var x = removed.map { Double(w[start + $0]) }
                    SymmetricSolver.solve(&a, &x, n: k)
                    for i in 0..<size {
                        var delta = 0.0
                        for (p, j) in removed.enumerated() { delta += inverse[i * size + j] * x[p] }
                        w[start + i] = Float(Double(w[start + i]) - delta)
                    }
                    for i in removed { w[start + i] = 0 }
                }
            }
        }
        return (w, mask)
    }

    /// `F⁻¹` of the block `start..<start+size` (row-major `size×size`), by the Woodbury recursion.
    func blockInverse(start: Int, size: Int, n: Int, gradients: [Float], samples: Int) -> [Double] {
        var inverse = [Double](repeating: 0, count: size * size)
        for i in 0..<size { inverse[i * size + i] = 1 / damping }
        var g = [Double](repeating: 0, count: size), v = [Double](repeating: 0, count: size)
        let m = Double(samples)
        for s in 0..<samples {
            for i in 0..<size { g[i] = Double(gradients[s * n + start + i]) }
            var gv = 0.0
            for i in 0..<size {
                var sum = 0.0
                for j in 0..<size { sum += inverse[i * size + j] * g[j] }
                v[i] = sum
                gv += g[i] * sum
            }
            let denominator = m + gv
            for i in 0..<size {
                let scaled = v[i] / denominator
                for j in 0..<size { inverse[i * size + j] -= scaled * v[j] }
            }
        }
        return inverse
    }
}

/// Solves `A x = b` for a small symmetric positive definite `A` (row-major `n×n`, float64) by
/// Cholesky; `A` is overwritten by its factor and `b` by `x`. A pivot that is not positive (a
/// singular principal block, which a damped Fisher inverse never has) is treated as 1.
enum SymmetricSolver {
    static func solve(_ a: inout [Double], _ b: inout [Double], n: Int) {
        for j in 0..<n {
            var d = a[j * n + j]
            for k in 0..<j { d -= a[j * n + k] * a[j * n + k] }
            let pivot = d > 0 ? d.squareRoot() : 1
            a[j * n + j] = pivot
            for i in (j + 1)..<max(j + 1, n) {
                var s = a[i * n + j]
                for k in 0..<j { s -= a[i * n + k] * a[j * n + k] }
                a[i * n + j] = s / pivot
            }
        }
        for i in 0..<n {          // L y = b
            var s = b[i]
            for k in 0..<i { s -= a[i * n + k] * b[k] }
            b[i] = s / a[i * n + i]
        }
        for i in stride(from: n - 1, through: 0, by: -1) {   // Lᵀ x = y
            var s = b[i]
            for k in (i + 1)..<max(i + 1, n) { s -= a[k * n + i] * b[k] }
            b[i] = s / a[i * n + i]
        }
    }
}
