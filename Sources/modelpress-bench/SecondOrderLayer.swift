import TensorCore

/// The layer the GPTQ and SparseGPT benchmarks share: `W [n, n] ~ 0.02·N(0, 1)` and
/// `H = A Aᵀ / n + 0.1·I` from a standard normal `A [n, n]` (seed 4096), and the median time
/// OpenBLAS sgemm takes for that product, the machine's best rate for dense float work.
struct SecondOrderLayer {
    let n: Int
    let w: [Float]
    let h: [Float]
    /// Seconds for the [n, n] × [n, n] sgemm (median of 3).
    let sgemmSeconds: Double

    init(n: Int) {
        self.n = n
        var rng = SeededGenerator(seed: 4096)
        w = rng.gaussianFloats(count: n * n, standardDeviation: 0.02)
        let a = rng.gaussianFloats(count: n * n)
        var h = [Float](repeating: 0, count: n * n)
        sgemmSeconds = medianSeconds(repetitions: 3) {
            BLAS.gemm(.none, .transposed, m: n, n: n, k: n, alpha: 1 / Float(n), a: a, lda: n, b: a, ldb: n, c: &h, ldc: n)
        }
        for j in 0..<n { h[j * n + j] += 0.1 }
        self.h = h
    }

    /// Floating-point operations per second of the sgemm.
    var sgemmRate: Double { 2 * Double(n) * Double(n) * Double(n) / sgemmSeconds }
}
