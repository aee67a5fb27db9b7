import Testing
import TensorCore

@Suite("SeededGenerator")
struct SeededGeneratorTests {
    @Test("SplitMix64 reference values (seed 0 and 1234567)")
    func knownAnswers() {
        var g = SeededGenerator(seed: 0)
        #expect(g.next() == 0xE220_A839_7B1D_CDAF)
        #expect(g.next() == 0x6E78_9E6A_A1B9_65F4)
        var h = SeededGenerator(seed: 1_234_567)
        #expect(h.next() == 6_457_827_717_110_365_317)
        #expect(h.next() == 3_203_168_211_198_807_973)
    }

    @Test("Gaussian draws have mean 0 and variance 1 within 4 standard errors")
    func gaussianMoments() {
        var g = SeededGenerator(seed: 99)
        let n = 100_000
        let xs = (0..<n).map { _ in g.nextGaussian() }
        let mean = xs.reduce(0, +) / Double(n)
        let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n - 1)
        #expect(abs(mean) < 4 / Double(n).squareRoot())
        #expect(abs(variance - 1) < 4 * (2.0 / Double(n)).squareRoot())
    }
}
