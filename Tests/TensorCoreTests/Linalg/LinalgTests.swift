import Testing
import TensorCore

@Suite("Linalg (OpenBLAS, LAPACKE)")
struct LinalgTests {
    @Test("sgemm matches a naive product")
    func gemm() {
        var rng = SeededGenerator(seed: 1)
        let (m, n, k) = (7, 5, 9)
        let a = rng.gaussianFloats(count: m * k), b = rng.gaussianFloats(count: k * n)
        var c = [Float](repeating: 0, count: m * n)
        BLAS.gemm(.none, .none, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &c, ldc: n)
        for i in 0..<m {
            for j in 0..<n {
                var s: Double = 0
                for p in 0..<k { s += Double(a[i * k + p]) * Double(b[p * n + j]) }
                #expect(abs(Double(c[i * n + j]) - s) < 1e-4)
            }
        }
    }

    @Test("Cholesky of a known SPD matrix, and failure on an indefinite one")
    func cholesky() throws {
        // A = L Lᵀ with L = [[2,0,0],[1,3,0],[-1,2,1]].
        var a: [Float] = [4, 2, -2, 2, 10, 5, -2, 5, 6]
        try LAPACK.choleskyFactor(.lower, n: 3, a: &a, lda: 3)
        #expect([a[0], a[3], a[4], a[6], a[7], a[8]] == [2, 1, 3, -1, 2, 1])
        var bad: [Float] = [1, 2, 2, 1]
        #expect(throws: LinalgError.notPositiveDefinite(leadingMinor: 2)) { try LAPACK.choleskyFactor(.lower, n: 2, a: &bad, lda: 2) }
    }
}
