import Testing
import TensorCore
import Reports
@testable import Passes

@Suite("GPTQ")
struct GPTQQuantizerTests {
    /// A synthetic layer: W [rows, n] ~ N(0, 0.02), inputs with strongly correlated, unequal columns
    /// (x = z·M with a random mixing M), H = XᵀX / T.
    static func layer(rows: Int = 64, n: Int = 128, tokens: Int = 1024, seed: UInt64 = 5) -> (w: [Float], h: [Float]) {
        var rng = SeededGenerator(seed: seed)
        let w = rng.gaussianFloats(count: rows * n, standardDeviation: 0.02)
        let z = rng.gaussianFloats(count: tokens * n)
        let mix = rng.gaussianFloats(count: n * n, standardDeviation: 1 / Float(n).squareRoot())
        var x = [Float](repeating: 0, count: tokens * n)
        BLAS.gemm(.none, .none, m: tokens, n: n, k: n, a: z, lda: n, b: mix, ldb: n, c: &x, ldc: n)
        for t in 0..<tokens { for j in 0..<n { x[t * n + j] *= 1 + Float(j % 7) } }   // unequal column scales
        var h = [Float](repeating: 0, count: n * n)
        BLAS.gemm(.transposed, .none, m: n, n: n, k: tokens, alpha: 1 / Float(tokens), a: x, lda: n, b: x, ldb: n, c: &h, ldc: n)
        return (w, h)
    }

    static func outputError(_ w: [Float], _ q: QuantizedTensor, _ h: [Float], n: Int) throws -> Double {
        try ErrorMetrics.outputRelativeError(original: w, reconstruction: q.dequantized(), rows: w.count / n, columns: n, gram: h)
    }

    @Test("with H = I nothing propagates: GPTQ gives round-to-nearest's codes exactly")
    func identityHessian() throws {
        let (w, _) = Self.layer()
        let n = 128
        var h = [Float](repeating: 0, count: n * n)
        for j in 0..<n { h[j * n + j] = 1 }
        for granularity in [QuantizedTensor.Granularity.channel, .group(32)] {
            let gptq = try GPTQQuantizer(bits: 4, symmetric: true, granularity: granularity).quantize(w, shape: Shape([64, n]), hessian: h)
            let rtn = IntegerQuantizer(bits: 4, symmetric: true, granularity: granularity).quantize(w, shape: Shape([64, n]))
            #expect(gptq == rtn, "\(granularity)")
        }
    }

    @Test("on correlated inputs GPTQ's output error is well below round-to-nearest's, at the same format",
          arguments: [(4, QuantizedTensor.Granularity.channel, false), (4, .channel, true), (4, .group(32), false), (4, .group(32), true), (3, .channel, false)])
    func beatsRoundToNearest(bits: Int, granularity: QuantizedTensor.Granularity, actOrder: Bool) throws {
        let (w, h) = Self.layer()
        let n = 128, shape = Shape([64, n])
        let gptq = try GPTQQuantizer(bits: bits, symmetric: false, granularity: granularity, blockSize: 32, actOrder: actOrder)
            .quantize(w, shape: shape, hessian: h)
        let rtn = IntegerQuantizer(bits: bits, symmetric: false, granularity: granularity).quantize(w, shape: shape)
        let e = try Self.outputError(w, gptq, h, n: n), r = try Self.outputError(w, rtn, h, n: n)
        #expect(e < 0.8 * r, "GPTQ \(e) vs RTN \(r)")
        #expect(gptq.bitsPerWeight == rtn.bitsPerWeight, "same storage")
    }

    @Test("the block size does not change the result (lazy batch updates are exact up to rounding)")
    func blockSize() throws {
        let (w, h) = Self.layer()
        let shape = Shape([64, 128])
        let one = try GPTQQuantizer(bits: 4, symmetric: true, granularity: .channel, blockSize: 1).quantize(w, shape: shape, hessian: h)
        let big = try GPTQQuantizer(bits: 4, symmetric: true, granularity: .channel, blockSize: 128).quantize(w, shape: shape, hessian: h)
        let differing = zip(one.codes, big.codes).filter { $0 != $1 }.count
        #expect(differing <= one.codes.count / 200, "\(differing) codes differ (float summation order only)")
    }

    @Test("the thread count does not change a byte", arguments: [QuantizedTensor.Granularity.channel, .group(32)])
    func threads(granularity: QuantizedTensor.Granularity) throws {
        let (w, h) = Self.layer()
        let gptq = GPTQQuantizer(bits: 4, symmetric: false, granularity: granularity, blockSize: 32)
        let one = try gptq.quantize(w, shape: Shape([64, 128]), hessian: h, threadCount: 1)
        let three = try gptq.quantize(w, shape: Shape([64, 128]), hessian: h, threadCount: 3)
        #expect(one == three)
    }

    @Test("zeros: a dead input column (H_jj = 0) is kept and rounded, not zeroed")
    func deadColumn() throws {
        var (w, h) = Self.layer()
        let n = 128
        for i in 0..<n { h[5 * n + i] = 0; h[i * n + 5] = 0 }
        let q = try GPTQQuantizer(bits: 8, symmetric: true, granularity: .channel).quantize(w, shape: Shape([64, n]), hessian: h)
        let d = q.dequantized()
        for r in 0..<64 { #expect(abs(d[r * n + 5] - w[r * n + 5]) <= q.scales[r] / 2 + 1e-7) }
    }

    @Test("column widths: all columns at b give uniform per-channel GPTQ's codes and scales; mixed widths are thread-independent and dropped columns are zero")
    func columnWidths() throws {
        let (w, h) = Self.layer()
        let n = 128, shape = Shape([64, n])
        for symmetric in [true, false] {
            let gptq = GPTQQuantizer(bits: 4, symmetric: symmetric, granularity: .channel, blockSize: 32)
            let uniform = try gptq.quantize(w, shape: shape, hessian: h)
            let same = try gptq.quantize(w, shape: shape, hessian: h, columnBits: [UInt8](repeating: 4, count: n))
            #expect(same.codes == uniform.codes && same.scales == uniform.scales && same.zeroPoints == uniform.zeroPoints)
            #expect(same.dequantized() == uniform.dequantized())
            let widths: [UInt8] = (0..<n).map { [0, 2, 3, 4, 8][$0 % 5] }
            let one = try gptq.quantize(w, shape: shape, hessian: h, columnBits: widths, threadCount: 1)
            let three = try gptq.quantize(w, shape: shape, hessian: h, columnBits: widths, threadCount: 3)
            #expect(one == three)
            #expect(one.columnBits == widths && one.widthClasses == [2, 3, 4, 8])
            let values = one.dequantized()
            #expect((0..<64).allSatisfy { r in stride(from: 0, to: n, by: 5).allSatisfy { values[r * n + $0] == 0 } })
            // Widths 3, 4, 5 in turn (4 bits on average) land between uniform 3 and uniform 5 bits.
            let mixed = try gptq.quantize(w, shape: shape, hessian: h, columnBits: (0..<n).map { UInt8(3 + $0 % 3) })
            let uniform3 = try GPTQQuantizer(bits: 3, symmetric: symmetric, granularity: .channel, blockSize: 32).quantize(w, shape: shape, hessian: h)
            let uniform5 = try GPTQQuantizer(bits: 5, symmetric: symmetric, granularity: .channel, blockSize: 32).quantize(w, shape: shape, hessian: h)
            let error = try Self.outputError(w, mixed, h, n: n)
            #expect(try error < Self.outputError(w, uniform3, h, n: n) && error > Self.outputError(w, uniform5, h, n: n))
        }
    }

    @Test("the diagonal of U from one reversed Cholesky factor equals the diagonal of the three-factorization U")
    func diagonalFromReversedFactor() throws {
        let (_, h) = Self.layer()
        let n = 128
        let gptq = GPTQQuantizer(bits: 4, symmetric: true, granularity: .channel)
        let u = try gptq.upperFactorOfInverse(h, n: n)
        let d = try gptq.diagonalOfUpperFactorOfInverse(h, n: n)
        // Both are float32 factorizations of the same damped matrix (condition number ≈ 1e3 here):
        // agreement to 1e-4 relative is what their rounding allows.
        for j in 0..<n { #expect(abs(d[j] - u[j * n + j]) <= 1e-4 * abs(u[j * n + j]), "column \(j): \(d[j]) vs \(u[j * n + j])") }
    }
}
