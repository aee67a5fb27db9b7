import TensorCore
import CheckpointFormats

/// How much the layer's output error grows per unit of squared weight error in each input column:
/// the weights `s_j` of the loss proxy `L(ΔW) = Σ_j s_j · Σ_r ΔW_rj²` that `allocate.bits` minimises.
///
/// - round-to-nearest consumers: `s_j = H_jj = E[x_j²]` (the diagonal of `tr(ΔW H ΔWᵀ)`, exact when
///   the columns' errors are uncorrelated);
/// - GPTQ consumers with a full Hessian: `s_j = 1 / U_jj²` with `U` the upper Cholesky factor of the
///   damped `H⁻¹` (the OBS loss of column `j` once the later columns compensate; BAQ's proxy);
/// - `proxy=weights`: `s_j = 1` (plain squared error; no statistics needed).
enum ColumnSensitivity {
    static func weights(for name: String, columns: Int, statistics: CalibrationStatistics?, gptq: GPTQQuantizer?,
                        weightsOnly: Bool) throws -> [Double] {
        if weightsOnly { return [Double](repeating: 1, count: columns) }
        guard let statistics else { throw PassError(pass: BitAllocationPass.name, tensor: name, message: "needs calibration statistics (or proxy=weights)") }
        if let gptq, let h = try statistics.hessian(for: name), h.count == columns * columns {
            do {
                let u = try gptq.diagonalOfUpperFactorOfInverse(h, n: columns)
                return (0..<columns).map { j in
                    let d = Double(u[j])
                    return h[j * columns + j] == 0 ? 0 : 1 / (d * d)
                }
            } catch {
                throw PassError(pass: BitAllocationPass.name, tensor: name, message: "the Hessian is not positive definite even with 10000x the damping")
            }
        }
        guard let d = try statistics.activationSquares(for: name), d.count == columns else {
            throw PassError(pass: BitAllocationPass.name, tensor: name, message: "\(statistics.path) has no statistics for it (add proxy=weights to allocate without)")
        }
        return d.map(Double.init)
    }

    /// `Σ_j s_j Σ_r (a_rj − b_rj)²` over row-major `[rows, s.count]` values.
    static func loss(_ a: [Float], _ b: [Float], weights s: [Double]) -> Double {
        columnLosses(a, b, weights: s).reduce(0, +)
    }

    /// `Σ_r a_rj²` for every column `j` of row-major `[rows, columns]` values: a dropped column's
    /// error, and with the weights `s` the tensor's output energy.
    static func columnSquares(_ a: [Float], columns n: Int) -> [Double] {
        var perColumn = [Double](repeating: 0, count: n)
        var base = 0
        while base < a.count {
            for j in 0..<n { perColumn[j] += Double(a[base + j]) * Double(a[base + j]) }
            base += n
        }
        return perColumn
    }

    /// `s_j Σ_r (a_rj − b_rj)²` for every column `j`.
    static func columnLosses(_ a: [Float], _ b: [Float], weights s: [Double]) -> [Double] {
        let n = s.count
        var perColumn = [Double](repeating: 0, count: n)
        var r = 0
        while r * n < a.count {
            let base = r * n
            for j in 0..<n {
                let d = Double(a[base + j] - b[base + j])
                perColumn[j] += d * d
            }
            r += 1
        }
        return (0..<n).map { perColumn[$0] * s[$0] }
    }
}
