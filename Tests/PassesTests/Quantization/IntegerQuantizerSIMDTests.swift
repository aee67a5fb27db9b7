import Foundation
import Testing
import TensorCore
import CheckpointFormats
import Recipes
@testable import Passes

/// The vectorized `IntegerQuantizer.quantize(float32:shape:threadCount:)` against the scalar
/// `referenceQuantize`: the same codes, scales (bit patterns) and zero points for every configuration.
@Suite("IntegerQuantizer: SIMD path equals the scalar reference")
struct IntegerQuantizerSIMDTests {
    /// Rows of different kinds, built for `bits`: Gaussian; grids of half steps (`x/Δ = k/2`, so about
    /// half the values are ties) for the symmetric and the asymmetric grid; all zero (with −0);
    /// sparse; constant; mixed signs and magnitudes. With `extreme`, also rows of subnormals, of
    /// tiny values (scales below FP16's normal range) and of huge values (scales above 65504), which
    /// force F32 scales for the whole tensor.
    static func values(rows: Int, columns: Int, bits: Int, seed: UInt64, extreme: Bool = false) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        let levels = (1 << (bits - 1)) - 1, qmax = (1 << bits) - 1
        var w = [Float](repeating: 0, count: rows * columns)
        let kinds = extreme ? 10 : 7
        for r in 0..<rows {
            let step = Float(1) / Float(1 << (r % 4 + 1))        // Δ: a power of two, exact in FP16
            let zero = Int(rng.next() % UInt64(qmax + 1))
            for c in 0..<columns {
                let g = Float(rng.nextGaussian())
                let k = Int(rng.next() % UInt64(4 * levels + 1)) - 2 * levels
                let kz = Int(rng.next() % UInt64(2 * qmax + 1)) - 2 * zero
                w[r * columns + c] = switch r % kinds {
                case 0: g * 0.02
                case 1: Float(k) * 0.5 * step                      // symmetric grid, ties at odd k
                case 2: Float(kz) * 0.5 * step                     // asymmetric grid with zero point `zero`
                case 3: c % 2 == 0 ? 0 : -0.0
                case 4: c % 3 == 0 ? g : 0
                case 5: r % 2 == 0 ? 5 : -3
                case 6: g * Float(1 << (c % 8)) * (c % 5 == 0 ? -1 : 1)
                case 7: g * Float(bitPattern: 0x0001_16C2)             // subnormal (about 1e-40)
                case 8: g * 1e-30                                  // scale below FP16's normal range
                default: g * 1e30                                  // scale above 65504
                }
            }
            // Pin the extremes of the grid rows so that their scale is exactly `step`.
            if r % kinds == 1, columns >= 2 { w[r * columns] = Float(levels) * step; w[r * columns + 1] = -Float(levels) * step }
            if r % kinds == 2, columns >= 2 { w[r * columns] = Float(-zero) * step; w[r * columns + 1] = Float(qmax - zero) * step }
        }
        return w
    }

    /// Quantizes with both paths and compares; returns the reference for further checks.
    @discardableResult
    static func expectSame(_ q: IntegerQuantizer, _ w: [Float], _ shape: Shape, threads: Int,
                           sourceLocation: Testing.SourceLocation = #_sourceLocation) -> QuantizedTensor {
        let reference = q.referenceQuantize(w, shape: shape)
        let fast = w.withUnsafeBytes { q.quantize(float32: $0, shape: shape, threadCount: threads) }
        let label = "bits \(q.bits) \(q.symmetric ? "sym" : "asym") \(q.granularity) \(q.clipping) \(shape) threads \(threads)"
        guard let fast else {
            Issue.record("\(label): the SIMD path reported a non-finite value", sourceLocation: sourceLocation)
            return reference
        }
        if fast.codes.count == reference.codes.count, let i = fast.codes.indices.first(where: { fast.codes[$0] != reference.codes[$0] }) {
            Issue.record("\(label): code \(i) of x = \(w[i]) is \(fast.codes[i]), reference \(reference.codes[i])", sourceLocation: sourceLocation)
        }
        #expect(fast.scales.map(\.bitPattern) == reference.scales.map(\.bitPattern), "\(label): scales", sourceLocation: sourceLocation)
        #expect(fast.zeroPoints == reference.zeroPoints, "\(label): zero points", sourceLocation: sourceLocation)
        let same = fast == reference   // also shape, bits, scheme and granularity
        #expect(same, "\(label)", sourceLocation: sourceLocation)
        return reference
    }

    static let granularities: [QuantizedTensor.Granularity] = [.tensor, .channel, .group(8), .group(32), .group(48)]

    @Test("min/max clipping, every granularity, 1 and 3 threads", arguments: 2...8, [true, false])
    func minMax(bits: Int, symmetric: Bool) {
        for granularity in Self.granularities {
            let q = IntegerQuantizer(bits: bits, symmetric: symmetric, granularity: granularity)
            for (rows, columns) in [(29, 96), (7, 192)] {
                let w = Self.values(rows: rows, columns: columns, bits: bits, seed: UInt64(bits * 2 + (symmetric ? 1 : 0)))
                for threads in [1, 3] {
                    let reference = Self.expectSame(q, w, Shape([rows, columns]), threads: threads)
                    #expect(reference.scales.allSatisfy { HalfPrecision.float(halfBits: HalfPrecision.halfBits($0)) == $0 },
                            "ordinary data keeps FP16 scales")
                }
            }
        }
    }

    @Test("the tie rows hold exact ties (x/Δ = n + ½), so rounding to even is exercised")
    func tiesArePresent() {
        for bits in [2, 4, 8] {
            for symmetric in [true, false] {
                let w = Self.values(rows: 14, columns: 96, bits: bits, seed: 11)
                let q = Self.expectSame(IntegerQuantizer(bits: bits, symmetric: symmetric, granularity: .channel), w, Shape([14, 96]), threads: 1)
                var ties = 0
                for i in w.indices {
                    let y = w[i] / q.scales[i / 96]
                    if y - y.rounded(.down) == 0.5 { ties += 1 }
                }
                #expect(ties > 50, "bits \(bits) \(symmetric ? "sym" : "asym"): only \(ties) ties")
            }
        }
    }

    @Test("subnormal, tiny and huge values (F32 scales), every granularity", arguments: 2...8, [true, false])
    func extremeValues(bits: Int, symmetric: Bool) {
        for granularity in Self.granularities {
            let q = IntegerQuantizer(bits: bits, symmetric: symmetric, granularity: granularity)
            let w = Self.values(rows: 30, columns: 96, bits: bits, seed: UInt64(100 + bits), extreme: true)
            for threads in [1, 3] {
                let reference = Self.expectSame(q, w, Shape([30, 96]), threads: threads)
                if granularity != .tensor {
                    #expect(!reference.scales.allSatisfy { HalfPrecision.float(halfBits: HalfPrecision.halfBits($0)) == $0 && $0.isNormal },
                            "extreme data forces F32 scales")
                }
            }
        }
    }

    @Test("row lengths that leave vector tails, and odd shapes", arguments: [true, false])
    func tails(symmetric: Bool) {
        let shapes: [[Int]] = [[5, 37], [3, 1], [1, 31], [2, 33], [4, 3, 17], [1, 1000], [6, 0], [0, 8], [], [13]]
        for dims in shapes {
            let shape = Shape(dims)
            for bits in [2, 3, 7, 8] {
                let w = Self.values(rows: shape.rowCount, columns: shape.columnCount, bits: bits, seed: UInt64(dims.reduce(1, *) + bits))
                for granularity in [QuantizedTensor.Granularity.tensor, .channel] {
                    for threads in [1, 3] {
                        Self.expectSame(IntegerQuantizer(bits: bits, symmetric: symmetric, granularity: granularity), w, shape, threads: threads)
                    }
                }
            }
        }
    }

    @Test("per-tensor groups larger than one parallel block (65536 values)", arguments: [2, 5, 8])
    func largeTensor(bits: Int) {
        let w = Self.values(rows: 70, columns: 1000, bits: bits, seed: 77)
        for symmetric in [true, false] {
            for threads in [1, 3] {
                Self.expectSame(IntegerQuantizer(bits: bits, symmetric: symmetric, granularity: .tensor), w, Shape([70, 1000]), threads: threads)
            }
        }
    }

    @Test("MSE and percentile clipping: the scalar search with the SIMD encoder", arguments: [2, 3, 4, 8])
    func clipping(bits: Int) {
        for clipping in [IntegerQuantizer.Clipping.defaultMSE, .percentile(99), .percentile(90)] {
            for symmetric in [true, false] {
                for granularity in [QuantizedTensor.Granularity.tensor, .channel, .group(32)] {
                    let w = Self.values(rows: 14, columns: 64, bits: bits, seed: UInt64(bits))
                    let q = IntegerQuantizer(bits: bits, symmetric: symmetric, granularity: granularity, clipping: clipping)
                    Self.expectSame(q, w, Shape([14, 64]), threads: 3)
                }
            }
        }
    }

    @Test("reads unaligned bytes (as from a memory map)")
    func unalignedInput() {
        let w = Self.values(rows: 9, columns: 96, bits: 8, seed: 5)
        let q = IntegerQuantizer(bits: 8, symmetric: false, granularity: .channel)
        let reference = q.referenceQuantize(w, shape: Shape([9, 96]))
        for offset in 1...3 {
            var bytes = [UInt8](repeating: 0xAB, count: offset)
            w.withUnsafeBytes { bytes.append(contentsOf: $0) }
            let fast = bytes.withUnsafeBytes { raw in
                q.quantize(float32: UnsafeRawBufferPointer(rebasing: raw[offset...]), shape: Shape([9, 96]), threadCount: 2)
            }
            let same = fast == reference
            #expect(same, "offset \(offset)")
        }
    }

    @Test("a NaN or ±Inf anywhere gives nil, whatever the granularity")
    func nonFinite() {
        let shape = Shape([6, 40])
        for granularity in [QuantizedTensor.Granularity.tensor, .channel, .group(8)] {
            for symmetric in [true, false] {
                for position in [0, 31, 39, 100, 239] {
                    for bad in [Float.nan, .infinity, -.infinity] {
                        var w = Self.values(rows: 6, columns: 40, bits: 4, seed: 3)
                        w[position] = bad
                        let q = IntegerQuantizer(bits: 4, symmetric: symmetric, granularity: granularity)
                        let result = w.withUnsafeBytes { q.quantize(float32: $0, shape: shape, threadCount: 2) }
                        #expect(result == nil, "\(granularity) \(symmetric) \(bad) at \(position)")
                    }
                }
            }
        }
    }

    @Test("the pass quantizes F32 from its bytes and F16 after decoding, as the reference does; NaN is named")
    func pass() throws {
        let recipe = try RecipeParser.parse(text: "quantize.int bits=4 granularity=group:32 symmetric=false", file: "r")
        var reader = OptionReader(step: recipe.steps[0])
        let pass = IntegerQuantization(options: IntegerQuantization.Options(reading: &reader))
        let w = Self.values(rows: 8, columns: 64, bits: 4, seed: 21)
        for dtype in [DType.f32, .f16, .bf16] {
            let tensor = try DenseTensor(floats: w, shape: Shape([8, 64]), dtype: dtype)
            var entry = TensorEntry(name: "layer.weight", tensor: tensor)
            try pass.apply(to: &entry, context: PassContext(threadCount: 3))
            guard case .quantized(let q) = entry.payload else { Issue.record("not quantized"); continue }
            let same = q == pass.options.quantizer.referenceQuantize(try tensor.floats(), shape: tensor.shape)
            #expect(same, "\(dtype)")
        }
        var bad = w
        bad[77] = .nan
        var entry = TensorEntry(name: "layer.weight", tensor: try DenseTensor(floats: bad, shape: Shape([8, 64])))
        #expect(throws: PassError(pass: "quantize.int", tensor: "layer.weight", message: "holds NaN or Inf (element 77)")) {
            try pass.apply(to: &entry, context: PassContext(threadCount: 2))
        }
    }
}

@Suite("IntegerQuantizer edge cases")
struct IntegerQuantizerEdgeTests {
    @Test("outliers far outside a clipped range saturate instead of overflowing; both paths agree",
          arguments: [true, false])
    func outliers(symmetric: Bool) {
        var values = (0..<256).map { Float($0 % 17) * 0.01 - 0.08 }
        values[3] = 3e30
        values[200] = -3e30
        let q = IntegerQuantizer(bits: 4, symmetric: symmetric, granularity: .tensor, clipping: .percentile(99))
        let fast = q.quantize(values, shape: Shape([256]))
        let reference = q.referenceQuantize(values, shape: Shape([256]))
        #expect(fast == reference)
        #expect(fast.codes[3] == 15, "the top code")
        #expect(fast.codes[200] == (symmetric ? 1 : 0))
    }

    @Test("a group spanning a few subnormal steps is stored as zeros without crashing", arguments: [true, false])
    func subnormal(symmetric: Bool) {
        let values: [Float] = [1e-45, 0, -1e-45, 2e-45] + [Float](repeating: 0.5, count: 4)
        let q = IntegerQuantizer(bits: 8, symmetric: symmetric, granularity: .group(4))
        let fast = q.quantize(values, shape: Shape([2, 4]))
        #expect(fast == q.referenceQuantize(values, shape: Shape([2, 4])))
        #expect(fast.dequantized()[0..<4].allSatisfy { $0 == 0 })
        #expect(abs(fast.dequantized()[5] - 0.5) <= fast.scales[1] / 2)
    }
}
