import Testing
import TensorCore
import TestSupport

/// Tensors with a width per column: the (row, class) group table, dequantization against the
/// definition (width-0 columns exactly +0, read without a scale), and the storage estimate.
@Suite("QuantizedTensor with column widths")
struct QuantizedTensorMixedWidthTests {
    @Test("width classes are the ascending distinct nonzero widths; groupIndex is row·K + class, −1 for width 0")
    func classes() {
        let q = MixedWidthSamples.make([3, 7], widths: [4, 0, 2, 8, 4, 2, 0], symmetric: false, seed: 1)
        #expect(q.widthClasses == [2, 4, 8])
        #expect(q.bits == 8 && q.granularity == .channel && q.scheme == .integer)
        #expect(q.scales.count == 9 && q.zeroPoints.count == 9)
        #expect(q.groupIndex(row: 0, column: 0) == 1)
        #expect(q.groupIndex(row: 2, column: 3) == 2 * 3 + 2)
        #expect(q.groupIndex(row: 1, column: 5) == 3)
        #expect(q.groupIndex(row: 1, column: 1) == -1)
        #expect(q.columnWidth(3) == 8 && q.columnWidth(6) == 0)
        let uniform = QuantizedTensor(shape: Shape([2, 3]), bits: 4, symmetric: true, granularity: .channel,
                                      codes: [8, 8, 8, 8, 8, 8], scales: [1, 1], zeroPoints: [8, 8])
        #expect(uniform.columnBits == nil && uniform.widthClasses.isEmpty && uniform.columnWidth(2) == 4)
        #expect(uniform.groupIndex(row: 1, column: 2) == 1)
    }

    @Test("dequantization equals the definition for whole tensors and any element range", arguments: [false, true])
    func dequantize(symmetric: Bool) {
        for dims in [[5, 19], [1, 33], [4, 2, 6], [12]] {
            let q = MixedWidthSamples.make(dims, widths: [3, 0, 8, 3, 5, 0, 2], symmetric: symmetric, seed: UInt64(dims[0]))
            let expected = MixedWidthSamples.definition(q)
            #expect(q.dequantized().map(\.bitPattern) == expected.map(\.bitPattern), "\(dims)")
            let n = q.codes.count
            for range in [0..<n, 1..<(n - 1), (n / 3)..<(n / 3 + 5), 0..<0] {
                var out = [Float](repeating: .nan, count: range.count)
                out.withUnsafeMutableBufferPointer { if let base = $0.baseAddress { q.dequantize(elements: range, into: base) } }
                #expect(out.map(\.bitPattern) == expected[range].map(\.bitPattern), "\(dims) \(range)")
            }
        }
    }

    @Test("a column of width 0 is exactly +0; a tensor of only such columns has no scales")
    func zeroWidth() {
        let q = MixedWidthSamples.make([4, 6], widths: [0, 4], symmetric: true, seed: 3)
        let values = q.dequantized()
        for r in 0..<4 { for c in stride(from: 0, to: 6, by: 2) { #expect(values[r * 6 + c].bitPattern == 0) } }
        let empty = QuantizedTensor(shape: Shape([3, 2]), symmetric: false, columnBits: [0, 0], codes: [0, 0, 0, 0, 0, 0], scales: [], zeroPoints: [])
        #expect(empty.widthClasses.isEmpty && empty.bits == 0)
        #expect(empty.dequantized().allSatisfy { $0.bitPattern == 0 })
    }

    @Test("bits per weight counts byte-padded rows, 16-bit scales, 8-bit zero points and 8 bits per column width")
    func storage() {
        // Σb = 4 + 0 + 2 + 8 + 4 + 2 + 0 = 20 bits: 3 bytes per row; K = 3.
        let sym = MixedWidthSamples.make([3, 7], widths: [4, 0, 2, 8, 4, 2, 0], symmetric: true, seed: 1)
        #expect(sym.bitsPerWeight == Double(8 * (3 * 3 + 9 * 2 + 7)) / 21)
        let asym = MixedWidthSamples.make([3, 7], widths: [4, 0, 2, 8, 4, 2, 0], symmetric: false, seed: 1)
        #expect(asym.bitsPerWeight == Double(8 * (3 * 3 + 9 * 3 + 7)) / 21)
    }
}
