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

    @Test("row-major triangles: the upper factor, the inverse from it, and a triangular inverse leave the other triangle alone")
    func triangles() throws {
        // A = Uᵀ U with U = Lᵀ = [[2,1,-1],[0,3,2],[0,0,1]]; the lower triangle holds markers (99).
        var a: [Float] = [4, 2, -2, 99, 10, 5, 99, 99, 6]
        try LAPACK.choleskyFactor(.upper, n: 3, a: &a, lda: 3)
        #expect(a == [2, 1, -1, 99, 3, 2, 99, 99, 1])
        // A⁻¹ from the factor (upper triangle), checked by A·A⁻¹ = I.
        try LAPACK.choleskyInverse(.upper, n: 3, a: &a, lda: 3)
        #expect(a[3] == 99 && a[6] == 99 && a[7] == 99)
        let full: [Double] = [a[0], a[1], a[2], a[1], a[4], a[5], a[2], a[5], a[8]].map(Double.init)
        let original: [Double] = [4, 2, -2, 2, 10, 5, -2, 5, 6]
        for i in 0..<3 {
            for j in 0..<3 {
                let product = (0..<3).reduce(0.0) { $0 + original[i * 3 + $1] * full[$1 * 3 + j] }
                #expect(abs(product - (i == j ? 1 : 0)) < 1e-5, "A·A⁻¹ [\(i), \(j)] = \(product)")
            }
        }
        // L = [[2,0,0],[1,3,0],[-1,2,1]]: L⁻¹ = [[1/2,0,0],[-1/6,1/3,0],[5/6,-2/3,1]]; upper markers stay.
        var l: [Float] = [2, 99, 99, 1, 3, 99, -1, 2, 1]
        try LAPACK.triangularInverse(.lower, n: 3, a: &l, lda: 3)
        let expected: [Float] = [0.5, 99, 99, -1.0 / 6, 1.0 / 3, 99, 5.0 / 6, -2.0 / 3, 1]
        #expect(zip(l, expected).allSatisfy { abs($0 - $1) < 1e-6 }, "\(l)")
        var singular: [Float] = [1, 0, 0, 0]
        #expect(throws: LinalgError.notPositiveDefinite(leadingMinor: 2)) { try LAPACK.triangularInverse(.lower, n: 2, a: &singular, lda: 2) }
    }
}
