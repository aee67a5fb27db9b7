import Foundation
import Testing
import TensorCore
@testable import Reports

@Suite("Error metrics (weight space)")
struct ErrorMetricsTests {
    @Test("known answer: W = [3, 4], W' = [3, 0]")
    func knownAnswer() throws {
        let m = try ErrorMetrics(original: [3, 4], reconstruction: [3, 0])
        // ||ΔW|| = 4, ||W|| = 5, ||W'|| = 3, ⟨W, W'⟩ = 9.
        #expect(m.relativeError == 0.8)
        #expect(abs(m.sqnrDecibels - 10 * log10(25.0 / 16.0)) < 1e-12)
        #expect(abs(m.sqnrDecibels - 1.9382002601611283) < 1e-12)
        #expect(m.maxAbsoluteError == 4)
        #expect(m.cosine == 0.6)
        #expect(m.sparsity == 0.5)
        #expect(m.originalSquaredNorm == 25 && m.reconstructionSquaredNorm == 9 && m.errorSquaredNorm == 16)
        #expect(m.innerProduct == 9 && m.reconstructionZeroCount == 1 && m.elementCount == 2)
    }

    @Test("SQNR is −20·log10 of the relative error")
    func sqnrMatchesRelativeError() throws {
        let m = try ErrorMetrics(original: [1, -2, 0.5, 4], reconstruction: [1.25, -2, 0.25, 3.5])
        // ΔW = [-0.25, 0, 0.25, 0.5]: ||ΔW||² = 0.375; ||W||² = 21.25.
        #expect(abs(m.relativeError - (0.375 / 21.25).squareRoot()) < 1e-15)
        #expect(abs(m.sqnrDecibels + 20 * log10(m.relativeError)) < 1e-12)
        #expect(m.maxAbsoluteError == 0.5)
        #expect(m.sparsity == 0)
    }

    @Test("uniform rounding noise of width Δ gives relative error² ≈ (Δ²/12) / E[W²]")
    func uniformNoiseModel() throws {
        var rng = SeededGenerator(seed: 2024)
        let n = 100_000
        let delta = 0.05
        let w = rng.gaussianFloats(count: n)
        let r = w.map { $0 + Float((rng.nextUnitDouble() - 0.5) * delta) }
        let m = try ErrorMetrics(original: w, reconstruction: r)
        let predicted = delta * delta / 12 / 1.0   // E[W²] = 1 for N(0, 1)
        let measured = m.relativeError * m.relativeError
        #expect(abs(measured / predicted - 1) < 0.02, "measured \(measured), predicted \(predicted)")
        // SQNR of uniform noise: 10·log10(12 / Δ²) ≈ 36.8 dB at Δ = 0.05.
        #expect(abs(m.sqnrDecibels - 10 * log10(12 / (delta * delta))) < 0.1)
        #expect(m.maxAbsoluteError <= delta / 2 + 1e-6 && m.maxAbsoluteError > 0.99 * delta / 2)
        #expect(m.cosine > 0.9998 && m.cosine < 1)
    }

    @Test("SIMD body and scalar tail agree with a naive Double loop", arguments: [0, 1, 7, 8, 9, 23, 64, 1001, 70_003])
    func matchesNaiveLoop(count: Int) throws {
        var rng = SeededGenerator(seed: UInt64(count) + 1)
        let w = rng.gaussianFloats(count: count)
        // Every third value pruned to zero, the rest perturbed.
        let r = w.enumerated().map { i, x in i % 3 == 0 ? 0 : x + Float(rng.nextGaussian() * 0.01) }
        let m = try ErrorMetrics(original: w, reconstruction: r)
        var ww = 0.0, rr = 0.0, wr = 0.0, dd = 0.0, mx = 0.0
        var zeros = 0
        for i in 0..<count {
            let a = Double(w[i]), b = Double(r[i])
            ww += a * a; rr += b * b; wr += a * b; dd += (a - b) * (a - b); mx = max(mx, abs(a - b))
            if r[i] == 0 { zeros += 1 }
        }
        let tolerance = 1e-12 * Double(max(count, 1))
        #expect(abs(m.originalSquaredNorm - ww) <= tolerance * max(1, ww))
        #expect(abs(m.reconstructionSquaredNorm - rr) <= tolerance * max(1, rr))
        #expect(abs(m.innerProduct - wr) <= tolerance * max(1, abs(wr)))
        #expect(abs(m.errorSquaredNorm - dd) <= tolerance * max(1, dd))
        #expect(m.maxAbsoluteError == mx)
        #expect(m.reconstructionZeroCount == zeros)
        #expect(m.sparsity == (count == 0 ? 0 : Double(zeros) / Double(count)))
    }

    @Test("a lossless reconstruction: error 0, SQNR +∞, cosine 1")
    func lossless() throws {
        let w: [Float] = [0.5, -1, 0, 2, 3, -0.25, 7, 1, 9]
        let m = try ErrorMetrics(original: w, reconstruction: w)
        #expect(m.relativeError == 0)
        #expect(m.sqnrDecibels == .infinity)
        #expect(m.maxAbsoluteError == 0)
        #expect(abs(m.cosine - 1) < 1e-15)
        #expect(m.sparsity == 1.0 / 9.0)
    }

    @Test("all-zero originals: 0/0 is 0, x/0 is +∞ (SQNR −∞), cosine 1 or 0")
    func zeroOriginal() throws {
        let zero = [Float](repeating: 0, count: 5)
        let both = try ErrorMetrics(original: zero, reconstruction: zero)
        #expect(both.relativeError == 0 && both.sqnrDecibels == .infinity && both.cosine == 1 && both.sparsity == 1)
        let grown = try ErrorMetrics(original: zero, reconstruction: [0, 0, 1, 0, 0])
        #expect(grown.relativeError == .infinity)
        #expect(grown.sqnrDecibels == -.infinity)
        #expect(grown.cosine == 0 && grown.maxAbsoluteError == 1 && grown.sparsity == 0.8)
        let erased = try ErrorMetrics(original: [1, 2], reconstruction: [0, 0])
        #expect(erased.relativeError == 1 && erased.sqnrDecibels == 0 && erased.cosine == 0 && erased.sparsity == 1)
    }

    @Test("negative zero counts as a zero; NaN inputs give NaN instead of trapping")
    func specialValues() throws {
        let m = try ErrorMetrics(original: [1, 1], reconstruction: [-0.0, 1])
        #expect(m.reconstructionZeroCount == 1)
        let n = try ErrorMetrics(original: [1, .nan, 2, 3, 4, 5, 6, 7, 8], reconstruction: [1, 2, 2, 3, 4, 5, 6, 7, 8])
        #expect(n.relativeError.isNaN && n.maxAbsoluteError.isNaN)
    }

    @Test("mismatched operands throw instead of trapping")
    func mismatches() throws {
        #expect(throws: MetricsError.countMismatch(original: 2, reconstruction: 3)) {
            try ErrorMetrics(original: [1, 2], reconstruction: [1, 2, 3])
        }
        let a = try DenseTensor(floats: [1, 2, 3, 4], shape: Shape([2, 2]))
        let b = try DenseTensor(floats: [1, 2, 3, 4], shape: Shape([4]))
        #expect(throws: MetricsError.shapeMismatch(original: [2, 2], reconstruction: [4])) {
            try ErrorMetrics(original: a, reconstruction: b)
        }
    }

    @Test("dense tensors are decoded from their dtype (BF16 here)")
    func denseTensors() throws {
        let a = try DenseTensor(floats: [3, 4], shape: Shape([2]), dtype: .bf16)
        let b = try DenseTensor(floats: [3, 0], shape: Shape([2]), dtype: .f16)
        let m = try ErrorMetrics(original: a, reconstruction: b)
        #expect(m.relativeError == 0.8 && m.cosine == 0.6)
    }
}
