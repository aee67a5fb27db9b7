import Testing
import TensorCore
@testable import Passes

/// `IntegerQuantizer.quantize(_:shape:columnBits:threadCount:)` against its definition: each width
/// class is exactly the per-channel quantizer of that width on the sub-matrix of the class's columns.
@Suite("IntegerQuantizer with a width per column")
struct IntegerQuantizerColumnWidthsTests {
    static let clippings: [IntegerQuantizer.Clipping] = [.minMax, .mse(grid: 20, maxShrink: 0.5), .percentile(99)]

    /// Seeded widths drawn from `choices`.
    static func widths(_ columns: Int, from choices: [UInt8], seed: UInt64) -> [UInt8] {
        var rng = SeededGenerator(seed: seed)
        return (0..<columns).map { _ in choices[Int(rng.next() % UInt64(choices.count))] }
    }

    /// The columns `selected` of a row-major `[rows, columns]` matrix.
    static func columns(_ w: [Float], rows: Int, columns: Int, _ selected: [Int]) -> [Float] {
        (0..<rows).flatMap { r in selected.map { w[r * columns + $0] } }
    }

    @Test("each class has the channel quantizer's scales, zero points and codes on the sub-matrix of its columns",
          arguments: [false, true], [false, true])
    func classesAreChannelQuantizers(symmetric: Bool, extreme: Bool) {
        let rows = 20, columns = 45, shape = Shape([rows, columns])
        // Extreme rows force F32 scales in every class (as the channel quantizer does for that class).
        let w = IntegerQuantizerSIMDTests.values(rows: rows, columns: columns, bits: 4, seed: 5, extreme: extreme)
        let columnBits = Self.widths(columns, from: [0, 2, 3, 4, 4, 6, 8], seed: extreme ? 7 : 8)
        for clipping in Self.clippings {
            let q = IntegerQuantizer(bits: 4, symmetric: symmetric, granularity: .channel, clipping: clipping)
                .quantize(w, shape: shape, columnBits: columnBits)
            #expect(q.columnBits == columnBits && q.widthClasses == Set(columnBits.filter { $0 > 0 }.map(Int.init)).sorted())
            let k = q.widthClasses.count
            let halfExact = q.scales.allSatisfy { HalfPrecision.float(halfBits: HalfPrecision.halfBits($0)) == $0 }
            #expect(halfExact != extreme, "extreme rows keep F32 scales (too large for FP16)")
            for (j, b) in q.widthClasses.enumerated() {
                let selected = (0..<columns).filter { Int(columnBits[$0]) == b }
                let reference = IntegerQuantizer(bits: b, symmetric: symmetric, granularity: .channel, clipping: clipping)
                    .quantize(Self.columns(w, rows: rows, columns: columns, selected), shape: Shape([rows, selected.count]))
                let label = "\(clipping) width \(b)"
                // A reference scale that is not an FP16 value but rounds to a finite nonzero one (a tiny
                // range) is stored rounded, and that row's codes re-encoded: within one step of the reference's.
                let rounded = (0..<rows).map { r -> Bool in
                    let s = reference.scales[r]
                    return HalfPrecision.float(halfBits: HalfPrecision.halfBits(s)) != s && IntegerQuantizer.halfStorable(s) != nil
                }
                #expect((0..<rows).map { q.scales[$0 * k + j].bitPattern }
                        == (0..<rows).map { rounded[$0] ? IntegerQuantizer.halfStorable(reference.scales[$0])!.bitPattern : reference.scales[$0].bitPattern }, "\(label) scales")
                #expect((0..<rows).map { q.zeroPoints[$0 * k + j] } == reference.zeroPoints, "\(label) zero points")
                let ours = Self.columns(q.codes.map(Float.init), rows: rows, columns: columns, selected), theirs = reference.codes.map(Float.init)
                for r in 0..<rows {
                    let row = (r * selected.count)..<((r + 1) * selected.count)
                    if rounded[r] {
                        #expect(zip(ours[row], theirs[row]).allSatisfy { abs($0 - $1) <= 1 }, "\(label) codes of rounded row \(r)")
                    } else {
                        #expect(Array(ours[row]) == Array(theirs[row]), "\(label) codes of row \(r)")
                    }
                }
                if !extreme { #expect(!rounded.contains(true), "ordinary rows have normal FP16 scales") }
            }
            let values = q.dequantized()
            for c in 0..<columns where columnBits[c] == 0 {
                #expect((0..<rows).allSatisfy { q.codes[$0 * columns + c] == 0 && values[$0 * columns + c].bitPattern == 0 }, "width-0 column \(c)")
            }
        }
    }

    @Test("every column at b bits gives the channel quantizer's tensor", arguments: 2...8)
    func uniformWidths(bits: Int) {
        let rows = 9, columns = 40, shape = Shape([rows, columns])
        let w = IntegerQuantizerSIMDTests.values(rows: rows, columns: columns, bits: bits, seed: UInt64(bits))
        for symmetric in [false, true] {
            let channel = IntegerQuantizer(bits: bits, symmetric: symmetric, granularity: .channel)
            let reference = channel.quantize(w, shape: shape)
            let q = channel.quantize(w, shape: shape, columnBits: [UInt8](repeating: UInt8(bits), count: columns))
            #expect(q.widthClasses == [bits] && q.bits == bits)
            #expect(q.codes == reference.codes && q.zeroPoints == reference.zeroPoints)
            #expect(q.scales.map(\.bitPattern) == reference.scales.map(\.bitPattern))
            #expect(q.dequantized().map(\.bitPattern) == reference.dequantized().map(\.bitPattern))
        }
    }

    @Test("the same tensor at any thread count; other ranks; all widths 0")
    func threadsAndShapes() {
        let shape = Shape([33, 3, 17])
        let w = IntegerQuantizerSIMDTests.values(rows: 33, columns: 51, bits: 3, seed: 11)
        let columnBits = Self.widths(51, from: [0, 2, 3, 5, 8], seed: 12)
        let quantizer = IntegerQuantizer(bits: 8, symmetric: false, granularity: .channel, clipping: .defaultMSE)
        let one = quantizer.quantize(w, shape: shape, columnBits: columnBits)
        for threads in [2, 3, 8] {
            let many = quantizer.quantize(w, shape: shape, columnBits: columnBits, threadCount: threads)
            #expect(many == one && many.scales.map(\.bitPattern) == one.scales.map(\.bitPattern), "\(threads) threads")
        }
        let vector = quantizer.quantize([1, -2, 0.5, 4], shape: Shape([4]), columnBits: [2, 0, 8, 2])
        #expect(vector.rowCount == 1 && vector.widthClasses == [2, 8] && vector.dequantized()[1] == 0)
        let none = quantizer.quantize([1, 2, 3, 4], shape: Shape([2, 2]), columnBits: [0, 0])
        #expect(none.scales.isEmpty && none.codes == [0, 0, 0, 0] && none.dequantized() == [0, 0, 0, 0])
    }

    @Test("a non-finite value is reported, in a width-0 column too")
    func nonFinite() {
        let quantizer = IntegerQuantizer(bits: 4, symmetric: true, granularity: .channel)
        for (i, bad) in [(1, Float.nan), (4, .infinity), (5, .nan), (0, -.infinity)] {
            var w: [Float] = [1, 2, 3, 4, 5, 6]
            w[i] = bad
            let q = w.withUnsafeBytes { quantizer.quantize(float32: $0, shape: Shape([2, 3]), columnBits: [4, 0, 3]) }
            #expect(q == nil, "value \(bad) in column \(i % 3)")
        }
    }
}
