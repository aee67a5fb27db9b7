import Testing
import TensorCore
@testable import Reports

@Suite("Output-space error tr(ΔW H ΔWᵀ) / tr(W H Wᵀ)")
struct OutputErrorTests {
    /// `Σ_r Σ_i Σ_j A_ri H_ij A_rj` by a naive triple loop in Double.
    static func naiveQuadraticTrace(_ a: [Float], rows: Int, columns: Int, h: [Float]) -> Double {
        var total = 0.0
        for r in 0..<rows {
            for i in 0..<columns {
                for j in 0..<columns {
                    total += Double(a[r * columns + i]) * Double(h[i * columns + j]) * Double(a[r * columns + j])
                }
            }
        }
        return total
    }

    /// A random symmetric positive definite matrix `X Xᵀ / N + 0.1 I` (n x n).
    static func randomSPD(_ n: Int, samples: Int, rng: inout SeededGenerator) -> [Float] {
        let x = rng.gaussianFloats(count: n * samples)
        var h = [Float](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n {
                var s = 0.0
                for t in 0..<samples { s += Double(x[i * samples + t]) * Double(x[j * samples + t]) }
                h[i * n + j] = Float(s / Double(samples)) + (i == j ? 0.1 : 0)
            }
        }
        return h
    }

    @Test("with H = I it equals relativeError² (DESIGN's definition has no square root)")
    func identityGram() throws {
        var rng = SeededGenerator(seed: 11)
        let (rows, columns) = (13, 17)
        let w = rng.gaussianFloats(count: rows * columns)
        let r = w.map { $0 + Float(rng.nextGaussian() * 0.1) }
        var identity = [Float](repeating: 0, count: columns * columns)
        for i in 0..<columns { identity[i * columns + i] = 1 }
        let output = try ErrorMetrics.outputRelativeError(original: w, reconstruction: r, rows: rows, columns: columns, gram: identity)
        let weight = try ErrorMetrics(original: w, reconstruction: r).relativeError
        #expect(abs(output / (weight * weight) - 1) < 1e-5, "output \(output), weight² \(weight * weight)")
        #expect(weight > 0.05 && weight < 0.2)   // the noise is really there (σ = 0.1 against 1)
    }

    @Test("with a random SPD H it matches a naive Double triple loop, in one block and in several",
          arguments: [1 << 20, 1])
    func randomGram(blockElementCount: Int) throws {
        var rng = SeededGenerator(seed: 5)
        let (rows, columns) = (70, 9)   // 70 rows: three blocks of at most 32 rows when blockElementCount = 1
        let h = Self.randomSPD(columns, samples: 40, rng: &rng)
        let w = rng.gaussianFloats(count: rows * columns)
        let r = w.map { $0 + Float(rng.nextGaussian() * 0.05) }
        let delta = zip(w, r).map { $0 - $1 }
        let expected = Self.naiveQuadraticTrace(delta, rows: rows, columns: columns, h: h)
            / Self.naiveQuadraticTrace(w, rows: rows, columns: columns, h: h)
        let got = try w.withUnsafeBufferPointer { wb in
            try r.withUnsafeBufferPointer { rb in
                try h.withUnsafeBufferPointer { hb in
                    try ErrorMetrics.outputRelativeError(original: wb, reconstruction: rb, rows: rows, columns: columns,
                                                         gram: hb, blockElementCount: blockElementCount)
                }
            }
        }
        #expect(abs(got / expected - 1) < 1e-4, "got \(got), expected \(expected)")
        // A non-isotropic H really weighs the error differently from the weight-space ratio.
        let weight = try ErrorMetrics(original: w, reconstruction: r).relativeError
        #expect(abs(got / (weight * weight) - 1) > 1e-3)
    }

    @Test("the diagonal variant matches Σ d_j ΔW_rj² / Σ d_j W_rj² and the full form with H = diag(d)")
    func diagonal() throws {
        // W = [[1, 2], [3, 4]], W' = [[1, 1], [2, 4]], d = [2, 0.5]:
        // noise = 2·0 + 0.5·1 + 2·1 + 0.5·0 = 2.5; signal = 2·1 + 0.5·4 + 2·9 + 0.5·16 = 30.
        let w: [Float] = [1, 2, 3, 4], r: [Float] = [1, 1, 2, 4], d: [Float] = [2, 0.5]
        let diagonal = try ErrorMetrics.diagonalOutputRelativeError(original: w, reconstruction: r, rows: 2, columns: 2,
                                                                     activationSquares: d)
        #expect(diagonal == 2.5 / 30)
        let full = try ErrorMetrics.outputRelativeError(original: w, reconstruction: r, rows: 2, columns: 2, gram: [2, 0, 0, 0.5])
        #expect(abs(full - 2.5 / 30) < 1e-7)
    }

    @Test("exact reconstruction gives 0; a zero signal with noise gives +∞")
    func edgeCases() throws {
        let w: [Float] = [1, -2, 3, 0.5, 1, 1]
        let h: [Float] = [1, 0.5, 0, 0.5, 2, 0.25, 0, 0.25, 1]
        #expect(try ErrorMetrics.outputRelativeError(original: w, reconstruction: w, rows: 2, columns: 3, gram: h) == 0)
        let zero = [Float](repeating: 0, count: 6)
        #expect(try ErrorMetrics.outputRelativeError(original: zero, reconstruction: w, rows: 2, columns: 3, gram: h) == .infinity)
        #expect(try ErrorMetrics.outputRelativeError(original: zero, reconstruction: zero, rows: 2, columns: 3, gram: h) == 0)
        #expect(try ErrorMetrics.diagonalOutputRelativeError(original: zero, reconstruction: w, rows: 2, columns: 3,
                                                             activationSquares: [1, 1, 1]) == .infinity)
    }

    @Test("sizes that do not fit throw")
    func sizeErrors() {
        let w: [Float] = [1, 2, 3, 4, 5, 6]
        #expect(throws: MetricsError.matrixSizeMismatch(rows: 4, columns: 3, count: 6)) {
            try ErrorMetrics.outputRelativeError(original: w, reconstruction: w, rows: 4, columns: 3, gram: [Float](repeating: 0, count: 9))
        }
        #expect(throws: MetricsError.gramSizeMismatch(columns: 3, gramCount: 4)) {
            try ErrorMetrics.outputRelativeError(original: w, reconstruction: w, rows: 2, columns: 3, gram: [1, 0, 0, 1])
        }
        #expect(throws: MetricsError.diagonalSizeMismatch(columns: 3, diagonalCount: 2)) {
            try ErrorMetrics.diagonalOutputRelativeError(original: w, reconstruction: w, rows: 2, columns: 3, activationSquares: [1, 1])
        }
        #expect(throws: MetricsError.countMismatch(original: 6, reconstruction: 5)) {
            try ErrorMetrics.outputRelativeError(original: w, reconstruction: [1, 2, 3, 4, 5], rows: 2, columns: 3, gram: [Float](repeating: 0, count: 9))
        }
    }
}
