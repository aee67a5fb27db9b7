import Testing
import TensorCore
@testable import Passes

@Suite("Pruning: choosing the smallest scores")
struct SmallestScoresTests {
    /// The definition: the first `count` positions in the order (score, position).
    static func reference(_ scores: [Float], count: Int) -> [Bool] {
        let order = scores.indices.sorted { (abs(scores[$0]), $0) < (abs(scores[$1]), $1) }
        var mask = [Bool](repeating: false, count: scores.count)
        for i in order.prefix(count) { mask[i] = true }
        return mask
    }

    static func mark(_ scores: [Float], count: Int) -> [Bool] {
        var mask = [Bool](repeating: false, count: scores.count)
        scores.withUnsafeBufferPointer { s in mask.withUnsafeMutableBufferPointer { SmallestScores.mark(s, count: count, into: $0) } }
        return mask
    }

    @Test("exactly count elements; ties go to the earlier position")
    func ties() {
        #expect(Self.mark([3, 1, 2, 1, 1, 0], count: 3) == [false, true, false, true, false, true])
        #expect(Self.mark([3, 1, 2, 1, 1, 0], count: 0) == [Bool](repeating: false, count: 6))
        #expect(Self.mark([3, 1, 2, 1, 1, 0], count: 6) == [Bool](repeating: true, count: 6))
        #expect(Self.mark([-0.0, 0, 5], count: 1) == [true, false, false], "−0 counts as 0")
    }

    @Test("the radix select of long inputs picks what the definition picks, ties included", arguments: [0, 1, 2_500, 7_777, 9_999, 10_000])
    func radixMatchesDefinition(count: Int) {
        var rng = SeededGenerator(seed: 11)
        // Half the values from a small set (many ties, some straddling the threshold), half continuous.
        let scores: [Float] = (0..<10_000).map { i in i % 2 == 0 ? Float(rng.next() % 7) * 0.25 : abs(rng.gaussianFloats(count: 1)[0]) }
        #expect(Self.mark(scores, count: count) == Self.reference(scores, count: count))
    }

    @Test("a threshold fed in chunks equals the threshold of the whole")
    func chunks() {
        var rng = SeededGenerator(seed: 3)
        let a = rng.gaussianFloats(count: 3_000), b = rng.gaussianFloats(count: 5_000).map { $0 * 0.1 }
        var search = ScoreThreshold(count: 4_000)
        a.withUnsafeBufferPointer { search.addCoarse($0) }; b.withUnsafeBufferPointer { search.addCoarse($0) }
        search.resolveCoarse()
        a.withUnsafeBufferPointer { search.addFine($0) }; b.withUnsafeBufferPointer { search.addFine($0) }
        let cut = search.resolveFine()
        let all = a + b
        let below = all.filter { SmallestScores.key($0) < cut.key }.count
        #expect(below + cut.ties == 4_000)
        #expect(cut.ties >= 1)
        let chosen = Self.reference(all, count: 4_000)
        let largestChosen = zip(all, chosen).filter { $0.1 }.map { abs($0.0) }.max()!
        #expect(largestChosen == Float(bitPattern: cut.key))
    }
}
