import Testing
import TensorCore
@testable import Reports

/// The accumulation split into register-sized passes, and the piecewise `ErrorMetrics` init, against
/// the single loop they replace: every sum bit for bit (the reports print them in full).
@Suite("Error metrics: passes and pieces give the single loop's bits")
struct ErrorMetricsPiecewiseTests {
    /// The single-loop accumulation (8 Double lanes in index order, lanes reduced, then the tail).
    static func singleLoop(_ w: [Float], _ r: [Float]) -> [UInt64] {
        let count = w.count
        guard count > 0 else { return [0, 0, 0, 0, 0, 0].map { Double($0).bitPattern } }
        var ww = SIMD8<Double>(), rr = SIMD8<Double>(), wr = SIMD8<Double>(), dd = SIMD8<Double>(), maxAbs = SIMD8<Double>()
        var zeros = 0
        let vectorEnd = count & ~7
        var i = 0
        while i < vectorEnd {
            let wd = SIMD8<Double>((0..<8).map { Double(w[i + $0]) }), rd = SIMD8<Double>((0..<8).map { Double(r[i + $0]) })
            let d = wd - rd
            ww += wd * wd
            rr += rd * rd
            wr += wd * rd
            dd += d * d
            let absolute = d.replacing(with: -d, where: d .< 0)
            maxAbs.replace(with: absolute, where: absolute .> maxAbs)
            zeros += (0..<8).filter { r[i + $0] == 0 }.count
            i += 8
        }
        var s = (ww.sum(), rr.sum(), wr.sum(), dd.sum(), maxAbs.max())
        for i in vectorEnd..<count {
            let wd = Double(w[i]), rd = Double(r[i]), d = wd - rd
            s.0 += wd * wd; s.1 += rd * rd; s.2 += wd * rd; s.3 += d * d
            s.4 = max(s.4, abs(d))
            if r[i] == 0 { zeros += 1 }
        }
        return [s.0, s.1, s.2, s.3, s.3.isNaN ? .nan : s.4, Double(zeros)].map(\.bitPattern)
    }

    static func fields(_ m: ErrorMetrics) -> [UInt64] {
        [m.originalSquaredNorm, m.reconstructionSquaredNorm, m.innerProduct, m.errorSquaredNorm, m.maxAbsoluteError,
         Double(m.reconstructionZeroCount)].map(\.bitPattern)
    }

    static func data(count: Int, seed: UInt64, special: Bool) -> (w: [Float], r: [Float]) {
        var rng = SeededGenerator(seed: seed)
        var w = rng.gaussianFloats(count: count, standardDeviation: 0.02)
        var r = w.map { ($0 * 4096).rounded() / 4096 }
        for i in stride(from: 0, to: count, by: 7) { r[i] = 0 }
        for i in stride(from: 3, to: count, by: 11) { r[i] = -0.0; w[i] = 1e30 }
        if special && count > 10 {
            r[count / 2] = .nan
            w[count - 1] = .infinity
        }
        return (w, r)
    }

    @Test("every length around the vector, piece (4096) and block (2048) sizes", arguments: [
        0, 1, 7, 8, 9, 2047, 2048, 2049, 4095, 4096, 4097, 8200, 70_001,
    ])
    func sameBits(count: Int) throws {
        for special in [false, true] {
            let (w, r) = Self.data(count: count, seed: UInt64(count), special: special)
            let expected = Self.singleLoop(w, r)
            let whole = try ErrorMetrics(original: w, reconstruction: r)
            #expect(Self.fields(whole) == expected, "count \(count), special \(special)")
            let pieces = w.withUnsafeBufferPointer { wp in
                r.withUnsafeBufferPointer { rp in
                    ErrorMetrics(count: count,
                                 original: { range, out in UnsafeBufferPointer(rebasing: wp[range]) },   // a view
                                 reconstruction: { range, out in                                          // a copy
                                     for i in range { out[i - range.lowerBound] = rp[i] }
                                     return UnsafeBufferPointer(out)
                                 })
                }
            }
            #expect(Self.fields(pieces) == expected, "count \(count), special \(special), piecewise")
            #expect(pieces.elementCount == count)
        }
    }

    @Test("pieces cover the elements in order, at most 4096 at a time")
    func pieceRanges() {
        var seen: [Range<Int>] = []
        _ = ErrorMetrics(count: 10_000, original: { range, out in
            seen.append(range)
            out.update(repeating: 1)
            return UnsafeBufferPointer(out)
        }, reconstruction: { _, out in
            out.update(repeating: 0)
            return UnsafeBufferPointer(out)
        })
        #expect(seen == [0..<4096, 4096..<8192, 8192..<10_000])
    }
}
