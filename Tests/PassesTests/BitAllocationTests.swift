import Foundation
import Testing
import TensorCore
@testable import Passes

@Suite("Bit allocation (BAQ loss model)")
struct BitAllocationTests {
    @Test("the closed form meets the budget and leaves every unit with the same modelled loss")
    func equalLoss() {
        let allocation = BitAllocation(reference: 3)
        let losses = [4.0, 1.0, 0.25, 9.0, 0.5], sizes = [100, 100, 50, 200, 50]
        let bits = allocation.continuous(losses: losses, sizes: sizes, average: 3, minimum: 0, maximum: 16)
        let mean = zip(bits, sizes).reduce(0.0) { $0 + $1.0 * Double($1.1) } / 500
        #expect(abs(mean - 3) < 1e-12)
        let final = zip(losses, bits).map { allocation.loss($0, at: $1) }
        #expect(final.allSatisfy { abs($0 - final[0]) < 1e-9 * final[0] }, "\(final)")
        // Against uniform 3 bits: total loss Σ size·G versus Σ size·L (AM–GM).
        let uniform = zip(losses, sizes).reduce(0.0) { $0 + $1.0 * Double($1.1) }
        let allocated = zip(final, sizes).reduce(0.0) { $0 + $1.0 * Double($1.1) }
        #expect(allocated < uniform)
    }

    @Test("clamped units are fixed at the bound and the others re-solved")
    func clamping() {
        let allocation = BitAllocation(reference: 4)
        let bits = allocation.continuous(losses: [1e6, 1, 1, 1e-6], sizes: [1, 1, 1, 1], average: 4, minimum: 2, maximum: 8)
        #expect(bits[0] == 8 && bits[3] == 2)
        #expect(abs(bits.reduce(0, +) / 4 - 4) < 1e-12)
        #expect(abs(bits[1] - bits[2]) < 1e-12)
    }

    @Test("the integer allocation equals a brute-force search over every combination (equal unit sizes)")
    func bruteForce() {
        let allocation = BitAllocation(reference: 4, theta: 2)
        let widths = [2, 3, 4, 5, 6, 8]
        for (seed, average) in [(1, 4.0), (2, 3.0), (3, 5.0), (4, 3.5)] {
            var rng = SeededGenerator(seed: UInt64(seed))
            let losses = (0..<4).map { _ in pow(10, Double(rng.next() % 600) / 100 - 3) }
            let sizes = [64, 64, 64, 64]
            let greedy = allocation.integer(losses: losses, sizes: sizes, average: average, widths: widths)
            func total(_ bits: [Int]) -> Double { zip(losses, bits).reduce(0.0) { $0 + allocation.loss($1.0, at: Double($1.1)) * 64 } }
            var best = Double.infinity
            for a in widths { for b in widths { for c in widths { for d in widths where Double(a + b + c + d) / 4 <= average + 1e-9 {
                best = min(best, total([a, b, c, d]))
            } } } }
            #expect(abs(total(greedy) - best) <= 1e-12 * best, "seed \(seed): greedy \(greedy) loses \(total(greedy)), best \(best)")
            #expect(Double(greedy.reduce(0, +)) / 4 <= average + 1e-9)
        }
    }

    @Test("choose: dominated choices are never taken, the budget is never exceeded, an impossible budget is nil")
    func chooseRules() {
        // Unit 0: choice 2 costs more than choice 1 and loses more (dominated); choice 3 is above the
        // segment 1–4 (not on the convex hull).
        let unit0: [(cost: Double, loss: Double)] = [(2, 100), (4, 30), (5, 40), (6, 20), (8, 5)]
        let unit1: [(cost: Double, loss: Double)] = [(2, 50), (4, 20), (8, 2)]
        for budget in stride(from: 4.0, through: 16, by: 1) {
            guard let chosen = BitAllocation.choose([unit0, unit1], budget: budget) else { Issue.record("budget \(budget)"); continue }
            #expect(chosen[0] != 2 && chosen[0] != 3, "budget \(budget): \(chosen)")
            #expect(unit0[chosen[0]].cost + unit1[chosen[1]].cost <= budget)
        }
        #expect(BitAllocation.choose([unit0, unit1], budget: 3.9) == nil)
        // Budget 8: from (2, 2) the best buy is unit 0's 2→4 (35/bit), then unit 1's 2→4 (15/bit).
        #expect(BitAllocation.choose([unit0, unit1], budget: 8) == [1, 1])
        // Budget 16: everything at the top.
        #expect(BitAllocation.choose([unit0, unit1], budget: 16) == [4, 2])
    }

    @Test("choose on measured-looking convex curves of unequal units matches brute force within one unit's step")
    func chooseNearOptimal() {
        var rng = SeededGenerator(seed: 11)
        for trial in 0..<20 {
            let sizes = (0..<4).map { _ in 16 * (1 + Int(rng.next() % 4)) }
            let choices: [[(cost: Double, loss: Double)]] = sizes.map { n in
                let scale = pow(10, Double(rng.next() % 400) / 100)
                return (2...6).map { b in (Double(n * b), scale * Double(n) * pow(2, -2 * Double(b))) }
            }
            let budget = Double(sizes.reduce(0, +)) * (2.5 + Double(trial % 5) * 0.5)
            guard let chosen = BitAllocation.choose(choices, budget: budget) else { Issue.record("trial \(trial)"); continue }
            func loss(_ c: [Int]) -> Double { c.indices.reduce(0.0) { $0 + choices[$1][c[$1]].loss } }
            func cost(_ c: [Int]) -> Double { c.indices.reduce(0.0) { $0 + choices[$1][c[$1]].cost } }
            var best = Double.infinity
            for a in 0..<5 { for b in 0..<5 { for c in 0..<5 { for d in 0..<5 where cost([a, b, c, d]) <= budget { best = min(best, loss([a, b, c, d])) } } } }
            #expect(cost(chosen) <= budget)
            // Greedy on convex curves is optimal up to the last unbought step: its loss is at most the
            // optimum plus the largest single-step loss decrease (the knapsack's integrality gap).
            let largestStep = choices.map { $0[0].loss - $0[1].loss }.max()!
            #expect(loss(chosen) <= best + largestStep, "trial \(trial)")
            #expect(loss(chosen) >= best * (1 - 1e-12))
        }
    }
}
