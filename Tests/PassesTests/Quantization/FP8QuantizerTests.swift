import Testing
import TensorCore
@testable import Passes

@Suite("FP8Quantizer")
struct FP8QuantizerTests {
    static func epsilon(_ w: [Float], _ r: [Float]) -> Double {
        var num = 0.0, den = 0.0
        for (a, b) in zip(w, r) { num += Double(a - b) * Double(a - b); den += Double(a) * Double(a) }
        return num / den
    }

    @Test("per-row absmax scaling on N(0,1): ε matches algorithms.md §1.8 (E4M3 7.0e-4, E5M2 2.8e-3) within 10%",
          arguments: [(FP8Format.Kind.e4m3, 7.0e-4), (.e5m2, 2.8e-3)])
    func anchors(format: FP8Format.Kind, expected: Double) {
        var rng = SeededGenerator(seed: 21)
        let w = rng.gaussianFloats(count: 64 * 4096)
        let q = FP8Quantizer(kind: format).quantize(w, shape: Shape([64, 4096]))
        let eps = Self.epsilon(w, q.dequantized())
        #expect(abs(eps / expected - 1) < 0.1, "ε = \(eps)")
    }

    @Test("the row maximum lands on the largest code; zeros stay zero; an all-zero row decodes to zeros")
    func knownAnswers() {
        let w: [Float] = [0.5, -2, 0, 1, 0, 0, 0, 0]
        let q = FP8Quantizer(kind: .e4m3).quantize(w, shape: Shape([2, 4]))
        #expect(q.scales == [2 / 448, 1])
        #expect(q.codes[1] == 0xFE)                       // -448: the largest magnitude, negative
        #expect(q.codes[2] == 0 && q.codes[4...].allSatisfy { $0 == 0 })
        let r = q.dequantized()
        #expect(r[1] == -2 && r[2] == 0 && r[4...].allSatisfy { $0 == 0 })
        #expect(abs(r[0] - 0.5) <= 0.5 * 0x1p-4)           // within half a step (3 mantissa bits)
        #expect(q.bitsPerWeight == 8 + 64.0 / 8)
        #expect(q.scheme == .float8(.e4m3) && q.granularity == .channel)
    }

    @Test("per-tensor scale uses the global maximum")
    func perTensor() {
        let w: [Float] = [1, 2, 3, 4, -8, 0.25]
        let q = FP8Quantizer(kind: .e5m2, perChannel: false).quantize(w, shape: Shape([2, 3]))
        #expect(q.scales == [8 / 57344])
        #expect(q.dequantized()[4] == -8)
    }
}
