import Foundation
import Testing
import TensorCore
@testable import Passes

@Suite("IntegerQuantizer")
struct IntegerQuantizerTests {
    static func gaussian(rows: Int, columns: Int, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return rng.gaussianFloats(count: rows * columns)
    }

    /// ε = ||W − Ŵ||² / ||W||² (the squared relative error of algorithms.md §1.5).
    static func epsilon(_ w: [Float], _ q: QuantizedTensor) -> Double {
        let r = q.dequantized()
        var num = 0.0, den = 0.0
        for (a, b) in zip(w, r) { num += Double(a - b) * Double(a - b); den += Double(a) * Double(a) }
        return num / den
    }

    static let configurations: [(Int, Bool, QuantizedTensor.Granularity)] = [
        (8, true, .channel), (8, false, .channel), (4, true, .group(32)), (4, false, .group(64)),
        (3, true, .tensor), (2, false, .channel), (5, false, .tensor), (6, true, .group(128)),
    ]

    @Test("|x − x̂| ≤ Δ/2 for every element inside the representable range", arguments: configurations)
    func errorBound(bits: Int, symmetric: Bool, granularity: QuantizedTensor.Granularity) {
        let shape = Shape([16, 256])
        let w = Self.gaussian(rows: 16, columns: 256, seed: UInt64(bits))
        let q = IntegerQuantizer(bits: bits, symmetric: symmetric, granularity: granularity).quantize(w, shape: shape)
        let r = q.dequantized()
        for row in 0..<16 {
            for c in 0..<256 {
                let g = q.groupIndex(row: row, column: c)
                let scale = q.scales[g], z = Float(q.zeroPoints[g])
                let levels = Float(symmetric ? (1 << (bits - 1)) - 1 : (1 << bits) - 1)
                let lowest = symmetric ? -levels * scale : -z * scale, highest = symmetric ? levels * scale : (levels - z) * scale
                let x = w[row * 256 + c]
                guard x >= lowest && x <= highest else { continue }
                #expect(abs(x - r[row * 256 + c]) <= scale / 2 * (1 + 1e-6), "(\(row), \(c))")
            }
        }
    }

    @Test("int8 per-channel SQNR on Gaussian weights is within 0.5 dB of the uniform-noise model Δ²/12")
    func uniformNoiseModel() {
        let rows = 64, columns = 4096
        let w = Self.gaussian(rows: rows, columns: columns, seed: 42)
        let q = IntegerQuantizer(bits: 8, symmetric: true, granularity: .channel).quantize(w, shape: Shape([rows, columns]))
        let signal = w.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(w.count)
        let predictedNoise = q.scales.reduce(0.0) { $0 + Double($1) * Double($1) / 12 } / Double(rows)
        let predicted = 10 * log10(signal / predictedNoise)
        let measured = 10 * log10(1 / Self.epsilon(w, q))
        #expect(abs(measured - predicted) < 0.5, "measured \(measured) dB, predicted \(predicted) dB")
    }

    @Test("anchors of algorithms.md §1.5 on N(0,1) rows of 4096 (within 5%)", arguments: [
        (8, true, QuantizedTensor.Granularity.channel, 7.5e-5),
        (4, true, .channel, 2.47e-2),
        (4, false, .channel, 1.95e-2),
        (4, true, .group(128), 1.38e-2),
        (4, false, .group(128), 1.01e-2),
        (3, false, .group(64), 3.8e-2),
    ])
    func anchors(bits: Int, symmetric: Bool, granularity: QuantizedTensor.Granularity, expected: Double) {
        let w = Self.gaussian(rows: 64, columns: 4096, seed: 7)
        let q = IntegerQuantizer(bits: bits, symmetric: symmetric, granularity: granularity).quantize(w, shape: Shape([64, 4096]))
        let eps = Self.epsilon(w, q)
        #expect(abs(eps / expected - 1) < 0.05, "ε = \(eps), expected \(expected)")
    }

    @Test("MSE clipping is never worse than min/max, and about 2x better at 4 bits symmetric")
    func mseClipping() {
        let w = Self.gaussian(rows: 32, columns: 4096, seed: 9)
        for (bits, symmetric) in [(4, true), (3, false), (8, true), (2, true)] {
            let minMax = IntegerQuantizer(bits: bits, symmetric: symmetric, granularity: .channel).quantize(w, shape: Shape([32, 4096]))
            let mse = IntegerQuantizer(bits: bits, symmetric: symmetric, granularity: .channel, clipping: .defaultMSE).quantize(w, shape: Shape([32, 4096]))
            #expect(Self.epsilon(w, mse) <= Self.epsilon(w, minMax) * (1 + 1e-3), "\(bits) bits")
            if bits == 4 && symmetric {
                // §1.4: best clip ≈ 0.63·absmax, ε 2.47e-2 → 1.22e-2.
                #expect(abs(Self.epsilon(w, mse) / 1.22e-2 - 1) < 0.1, "ε = \(Self.epsilon(w, mse))")
            }
        }
    }

    @Test("zeros stay exactly zero in every scheme; an all-zero row decodes to zeros")
    func zerosStayZero() {
        var w = Self.gaussian(rows: 8, columns: 128, seed: 3)
        for i in stride(from: 0, to: w.count, by: 3) { w[i] = 0 }
        for c in 0..<128 { w[5 * 128 + c] = 0 }
        for (bits, symmetric, granularity) in Self.configurations where 128 % max(1, { if case .group(let n) = granularity { n } else { 1 } }()) == 0 {
            let q = IntegerQuantizer(bits: bits, symmetric: symmetric, granularity: granularity, clipping: .defaultMSE).quantize(w, shape: Shape([8, 128]))
            let r = q.dequantized()
            for i in w.indices where w[i] == 0 { #expect(r[i] == 0, "\(bits) bits \(symmetric) \(granularity): element \(i) = \(r[i])") }
        }
    }

    @Test("rounding is half to even: x = 0.5Δ → 0, 1.5Δ → 2, 2.5Δ → 2")
    func tiesToEven() {
        // Row max 127 gives Δ = 1 exactly (an FP16-exact scale), so x/Δ is x.
        let w: [Float] = [127, 0.5, 1.5, 2.5, -0.5, -1.5, 3.49, -127]
        let q = IntegerQuantizer(bits: 8, symmetric: true, granularity: .channel).quantize(w, shape: Shape([1, 8]))
        #expect(q.scales == [1])
        #expect(q.dequantized() == [127, 0, 2, 2, 0, -2, 3, -127])
    }

    @Test("percentile clipping bounds the range at the P-th percentile of |x|")
    func percentileClipping() {
        var w = Self.gaussian(rows: 1, columns: 1000, seed: 5)
        w[17] = 1000   // an outlier that min/max would turn into the range
        let q = IntegerQuantizer(bits: 4, symmetric: true, granularity: .channel, clipping: .percentile(99)).quantize(w, shape: Shape([1, 1000]))
        let sortedMagnitudes = w.map { abs($0) }.sorted()
        let bound = sortedMagnitudes[989]
        #expect(abs(q.scales[0] - bound / 7) <= bound / 7 * 1e-3)
        #expect(q.dequantized()[17] == q.scales[0] * 7)   // the outlier is clipped to the top level
    }

    @Test("bits per weight counts codes, 16-bit scales and zero points")
    func bitsPerWeight() {
        let w = Self.gaussian(rows: 4, columns: 256, seed: 1)
        let q = IntegerQuantizer(bits: 4, symmetric: false, granularity: .group(128)).quantize(w, shape: Shape([4, 256]))
        #expect(q.scales.count == 8)
        #expect(abs(q.bitsPerWeight - (4 + (8 * 16 + 8 * 4) / 1024.0)) < 1e-12)
    }
}
