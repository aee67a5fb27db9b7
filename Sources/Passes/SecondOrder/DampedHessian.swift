import TensorCore

/// Factorizations of a damped input Hessian `H + λ·mean(diag H)·I`, shared by the second-order
/// passes (GPTQ, SparseGPT, BAQ's sensitivities).
///
/// Invariants: dead inputs (`H_jj = 0`) get `H_jj = 1` first (their columns are then rounded or
/// pruned without spreading error); λ starts at `damping` and is raised ×10, up to 4 times, while the
/// factorization finds the matrix not positive definite.
struct DampedHessian: Sendable {
    /// λ, relative to `mean(diag H)`.
    let damping: Double

    /// The diagonal of `U` (see `upperFactorOfInverse`) from one Cholesky factorization instead of
    /// three: `H⁻¹ = UᵀU` means `H = VVᵀ` with `V = U⁻¹` upper triangular and `V_jj = 1/U_jj`, and
    /// that "upper-lower" factor is the Cholesky factor of `H` with its rows and columns reversed,
    /// read backwards. Same damping rule. (n³/3 flops instead of 4n³/3.)
    func diagonalOfUpperFactorOfInverse(_ h: [Float], n: Int) throws(LinalgError) -> [Float] {
        let factor = try dampedFactor(Self.reversed(h, n: n), n: n) { (p) throws(LinalgError) in
            try LAPACK.choleskyFactor(.lower, n: n, a: p.baseAddress!, lda: n)
        }
        return (0..<n).map { j in 1 / factor[(n - 1 - j) * n + (n - 1 - j)] }
    }

    /// `U` with `(H + λ·mean(diag H)·I)⁻¹ = Uᵀ U`, λ raised ×10 (up to 4 times) while not positive definite.
    ///
    /// From one Cholesky factorization and one triangular inverse (2n³/3 flops) instead of GPTQ's
    /// factor–invert–factor (4n³/3): with `J` the reversal, `JHJ = LLᵀ` gives `H = VVᵀ` for the upper
    /// triangular `V = JLJ`, so `H⁻¹ = (V⁻¹)ᵀV⁻¹` and `U = V⁻¹ = J L⁻¹ J` (the upper Cholesky factor of
    /// `H⁻¹` is unique, so this is the same `U`).
    func upperFactorOfInverse(_ h: [Float], n: Int) throws(LinalgError) -> [Float] {
        let lowerInverse = try dampedFactor(Self.reversed(h, n: n), n: n) { (p) throws(LinalgError) in
            try LAPACK.choleskyFactor(.lower, n: n, a: p.baseAddress!, lda: n)
            try LAPACK.triangularInverse(.lower, n: n, a: p.baseAddress!, lda: n)
        }
        var u = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in i..<n { u[i * n + j] = lowerInverse[(n - 1 - i) * n + (n - 1 - j)] } }
        return u
    }

    /// `J a J`: rows and columns in reverse order.
    static func reversed(_ a: [Float], n: Int) -> [Float] {
        var r = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { r[i * n + j] = a[(n - 1 - i) * n + (n - 1 - j)] } }
        return r
    }

    /// `factor` applied to `H + λ·mean(diag H)·I` after dead inputs (`H_jj = 0`) get `H_jj = 1`, λ
    /// starting at `damping` and raised ×10 (up to 4 times) while the factorization finds the matrix
    /// not positive definite.
    private func dampedFactor(_ h: [Float], n: Int, _ factor: (UnsafeMutableBufferPointer<Float>) throws(LinalgError) -> Void) throws(LinalgError) -> [Float] {
        var h = h
        for j in 0..<n where h[j * n + j] == 0 { h[j * n + j] = 1 }
        var mean = 0.0
        for j in 0..<n { mean += Double(h[j * n + j]) }
        mean /= Double(max(n, 1))
        var lambda = damping
        var attempt = 0
        while true {
            var a = h
            for j in 0..<n { a[j * n + j] += Float(lambda * mean) }
            do {
                try a.withUnsafeMutableBufferPointer { (p) throws(LinalgError) in try factor(p) }
                return a
            } catch {
                attempt += 1
                if attempt > 4 { throw error }
                lambda *= 10
            }
        }
    }
}
