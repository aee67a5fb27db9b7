import Testing
import TensorCore

/// `QuantizedTensor.dequantized()` and `dequantize(elements:into:)` (16 codes at a time for integer
/// schemes) against the element-by-element definition `scales[g] · Float(code − zeroPoints[g])`.
@Suite("QuantizedTensor dequantization")
struct QuantizedTensorDequantizeTests {
    static func tensor(bits: Int, symmetric: Bool, granularity: QuantizedTensor.Granularity, shape: Shape, seed: UInt64) -> QuantizedTensor {
        var rng = SeededGenerator(seed: seed)
        let rows = shape.rowCount, columns = shape.columnCount
        let groups: Int = switch granularity {
        case .tensor: 1
        case .channel: rows
        case .group(let n): rows * ((columns + n - 1) / n)
        }
        let codes = (0..<shape.elementCount).map { _ in UInt8(rng.next() % UInt64(1 << bits)) }
        // Scales of every magnitude, including subnormal and huge ones (products round and overflow).
        let magnitudes: [Float] = [1e-3, Float(bitPattern: 0x0000_1B3E), 3e36, 1]   // the second is subnormal (about 1e-41)
        let scales: [Float] = (0..<groups).map { (g: Int) -> Float in Float(rng.nextGaussian()) * magnitudes[g % 4] }
        let zeros = (0..<groups).map { _ in symmetric ? Int32(1 << (bits - 1)) : Int32(rng.next() % UInt64(1 << bits)) }
        return QuantizedTensor(shape: shape, bits: bits, symmetric: symmetric, granularity: granularity, codes: codes, scales: scales, zeroPoints: zeros)
    }

    static func definition(_ q: QuantizedTensor) -> [Float] {
        (0..<q.codes.count).map { i in
            let g = q.groupIndex(row: i / max(q.columnCount, 1), column: i % max(q.columnCount, 1))
            return q.scales[g] * Float(Int32(q.codes[i]) - q.zeroPoints[g])
        }
    }

    @Test("whole tensors and arbitrary element ranges equal the definition", arguments: [2, 4, 8])
    func integerScheme(bits: Int) {
        for granularity in [QuantizedTensor.Granularity.tensor, .channel, .group(16), .group(5)] {
            for dims in [[7, 80], [3, 33], [1, 1], [4, 2, 10]] {
                let shape = Shape(dims)
                if case .group(let n) = granularity, shape.columnCount % n != 0 && n == 16 { continue }
                let q = Self.tensor(bits: bits, symmetric: bits != 4, granularity: granularity, shape: shape, seed: UInt64(bits + dims[0]))
                let expected = Self.definition(q)
                #expect(q.dequantized().map(\.bitPattern) == expected.map(\.bitPattern), "\(granularity) \(dims)")
                let n = q.codes.count
                for range in [0..<n, (n / 3)..<(n - n / 4), 1..<min(n, 18), (n - 1)..<n, 0..<0] where range.upperBound <= n && range.lowerBound <= range.upperBound {
                    var out = [Float](repeating: .nan, count: range.count)
                    out.withUnsafeMutableBufferPointer { if let p = $0.baseAddress { q.dequantize(elements: range, into: p) } }
                    #expect(out.map(\.bitPattern) == expected[range].map(\.bitPattern), "\(granularity) \(dims) \(range)")
                }
            }
        }
    }

    @Test("large zero points fall back to the scalar formula with the same rounding")
    func largeZeroPoints() {
        let codes = (0..<64).map { UInt8($0 * 3 % 256) }
        let q = QuantizedTensor(shape: Shape([2, 32]), bits: 8, symmetric: false, granularity: .channel, codes: codes,
                                scales: [0.5, 3], zeroPoints: [(1 << 24) + 1, -(1 << 25) - 3])
        #expect(q.dequantized().map(\.bitPattern) == Self.definition(q).map(\.bitPattern))
    }

    @Test("codebook and FP8 schemes look codes up in their table")
    func tableSchemes() {
        let codebook = (0..<16).map { Float($0) / 8 - 1 }
        let codes = (0..<96).map { UInt8($0 % 16) }
        let nf = QuantizedTensor(shape: Shape([3, 32]), scheme: .codebook(codebook), bits: 4, symmetric: true, granularity: .group(16),
                                 codes: codes, scales: [1, 2, 3, 4, 5, 6], zeroPoints: [0, 0, 0, 0, 0, 0])
        let expectedNF: [Float] = (0..<96).map { (i: Int) -> Float in Float(i / 16 + 1) * codebook[i % 16] }
        #expect(nf.dequantized() == expectedNF)
        let fp8 = QuantizedTensor(shape: Shape([2, 48]), scheme: .float8(.e4m3), bits: 8, symmetric: true, granularity: .channel,
                                  codes: (0..<96).map { UInt8($0 * 5 % 256) }, scales: [0.5, 2], zeroPoints: [0, 0])
        let fp8Scales: [Float] = [0.5, 2]
        let expected: [Float] = (0..<96).map { (i: Int) -> Float in fp8Scales[i / 48] * FP8Format.e4m3.decode(UInt8(i * 5 % 256)) }
        #expect(fp8.dequantized().map(\.bitPattern) == expected.map(\.bitPattern))
    }
}
