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
}
