import TensorCore
import CheckpointFormats

/// SparseGPT (Frantar & Alistarh 2023; algorithms.md §4.5): second-order pruning of `W [rows, columns]`
/// with the inputs' Gram matrix `H [columns, columns]`, the weights that stay compensating for the
/// ones removed.
///
/// GPTQ's column sweep with "quantize" replaced by "zero if masked". With `U` the upper Cholesky
/// factor of `(H + λ·mean(diag H)·I)⁻¹` (`DampedHessian`), for each block of `blockSize` columns:
/// - unstructured: on the current (already compensated) weights, the block's `quota` lowest scores
///   `w_rj² / U_jj²` are masked (one choice over the whole block, so rows may differ but the block
///   gets its exact share: quotas are `round(p·rows·end) − round(p·rows·start)`, which add up to
///   exactly `round(p·n)` over the tensor);
/// - N:M: at each group's first column, every row masks the `M − N` lowest `w² / U_jj²` of its group;
/// - then column by column: `q = masked ? 0 : w_j`, `err = (w_j − q)/U_jj`,
///   `W[:, j+1..<end] −= err ⊗ U[j, j+1..<end]`, and after the block `W[:, end:] −= E · U[block, end:]`.
/// `U_jj²` is the inverse-Hessian diagonal of the problem still open at column `j`, so the score is
/// OBS's saliency `w²/[H⁻¹]_jj` (up to ½) and the update OBS's optimal one `−(w_j/[H⁻¹]_jj)·H⁻¹e_j`
/// restricted to the columns not yet fixed.
public struct SparseGPTPruner: Sendable {
    public let target: PruningTarget
    public let blockSize: Int
    public let damping: Double

    public init(target: PruningTarget, blockSize: Int = 128, damping: Double = 0.01) {
        self.target = target
        self.blockSize = blockSize
        self.damping = damping
    }

    /// The pruned weights (masked entries exactly 0) and the mask, for `values` row-major
    /// `[rows, columns]` (finite) and `hessian` row-major `[columns, columns]`.
    public func prune(_ values: [Float], shape: Shape, hessian: [Float], threadCount: Int = 1) throws(LinalgError) -> (values: [Float], mask: [Bool]) {
        let rows = shape.rowCount, n = shape.columnCount
        precondition(values.count == rows * n && hessian.count == n * n, "SparseGPT: sizes do not fit")
        if case .nOfM(_, let m) = target.pattern { precondition(blockSize % m == 0 && n % m == 0, "SparseGPT: groups must not straddle blocks") }
        let u = try DampedHessian(damping: damping).upperFactorOfInverse(hessian, n: n)
        var w = values
        var mask = [Bool](repeating: false, count: rows * n)
        var errors = [Float](repeating: 0, count: rows * blockSize)
        var scores = [Float](), blockMask = [Bool]()
        for start in stride(from: 0, to: n, by: blockSize) {
            let end = min(start + blockSize, n), width = end - start
            if target.pattern == .unstructured {
                // One choice over the whole block, on the weights as they are now.
                scores = [Float](repeating: 0, count: rows * width)
                for r in 0..<rows {
                    for j in start..<end { let d = u[j * n + j], x = w[r * n + j]; scores[r * width + (j - start)] = x * x / (d * d) }
                }
                blockMask = [Bool](repeating: false, count: rows * width)
                let quota = target.cumulativeCount(rows * end) - target.cumulativeCount(rows * start)
                scores.withUnsafeBufferPointer { s in blockMask.withUnsafeMutableBufferPointer { SmallestScores.mark(s, count: quota, into: $0) } }
                for r in 0..<rows { for j in start..<end where blockMask[r * width + (j - start)] { mask[r * n + j] = true } }
            }
            w.withUnsafeMutableBufferPointer { wBuffer in
                mask.withUnsafeMutableBufferPointer { maskBuffer in
                    errors.withUnsafeMutableBufferPointer { errorBuffer in
                        u.withUnsafeBufferPointer { uBuffer in
                            ParallelLoop.forEachRange(count: rows, threadCount: threadCount) { rowRange in
                                for r in rowRange {
                                    sweepRow(r, start: start, end: end, n: n, w: wBuffer, mask: maskBuffer, errors: errorBuffer, u: uBuffer)
                                }
                            }
                        }
                    }
                }
            }
            LazyBlockUpdate.apply(&w, errors: errors, u: u, rows: rows, n: n, start: start, end: end, blockSize: blockSize)
        }
        return (w, mask)
    }

    /// Row `r` of one block: N:M masks at each group's first column, then zero-or-keep and push the
    /// error onto the block's later columns of the row.
    private func sweepRow(_ r: Int, start: Int, end: Int, n: Int, w: UnsafeMutableBufferPointer<Float>, mask: UnsafeMutableBufferPointer<Bool>,
                          errors: UnsafeMutableBufferPointer<Float>, u: UnsafeBufferPointer<Float>) {
        var groupScores = [Float](repeating: 0, count: { if case .nOfM(_, let m) = target.pattern { return m }; return 0 }())
        for j in start..<end {
            if case .nOfM(let kept, let m) = target.pattern, (j - start) % m == 0 {
                for k in 0..<m { let d = u[(j + k) * n + j + k], x = w[r * n + j + k]; groupScores[k] = x * x / (d * d) }
                groupScores.withUnsafeBufferPointer { s in
                    SmallestScores.mark(s, count: m - kept, into: UnsafeMutableBufferPointer(rebasing: mask[(r * n + j)..<(r * n + j + m)]))
                }
            }
            let x = w[r * n + j]
            let q: Float = mask[r * n + j] ? 0 : x
            let err = (x - q) / u[j * n + j]
            errors[r * blockSize + (j - start)] = err
            w[r * n + j] = q
            guard err != 0 else { continue }   // a kept weight passes nothing on
            var k = j + 1
            while k < end {
                w[r * n + k] -= err * u[j * n + k]
                k += 1
            }
        }
    }
}
