import Foundation

/// Bit allocation by the BAQ loss model (algorithms.md §3.1): unit `u` (a tensor, a group of
/// columns or a column) of `size_u` weights has loss `L_u` at the reference width `R̄`, and
/// `L_u(R) = L_u · 2^(−θ(R − R̄))` at width `R` (θ = 1.95 in BAQ; 2 is the high-rate law).
///
/// - `continuous`: the closed form of `min Σ L_u(R_u)` subject to `Σ size_u R_u = R̄ Σ size_u`:
///   `R_u = R̄ + (1/θ)·log2(L_u / G)` with `G` the size-weighted geometric mean of the losses, so that
///   every unit ends with the same loss (the equal-loss structure); units pushed outside
///   `[minimum, maximum]` are clamped there and the rest re-solved (water-filling).
/// - `integer`: whole widths in `widths` (ascending) meeting the same budget: every unit starts at the
///   smallest width, then the unit with the largest loss decrease per added weight-bit moves up one
///   width while the budget allows. With equal unit sizes this greedy is optimal for these convex
///   loss curves; with unequal sizes it is the standard marginal-gain heuristic.
/// - `choose`: the same marginal-gain rule over arbitrary per-unit choices `(cost, loss)` (real
///   storage in bits and a measured or modelled loss): a multiple-choice knapsack solved on each
///   unit's lower convex hull. At the end every unit sits where its next step up would buy less loss
///   per bit than the last step taken anywhere: the discrete form of the equal-slope (water level)
///   condition behind the closed form.
public struct BitAllocation: Sendable {
    public let theta: Double
    public let reference: Double

    public init(reference: Double, theta: Double = 1.95) {
        self.reference = reference
        self.theta = theta
    }

    /// The modelled loss of a unit with reference loss `loss` at width `bits`.
    public func loss(_ loss: Double, at bits: Double) -> Double { loss * pow(2, -theta * (bits - reference)) }

    /// Real-valued widths meeting `average` over `sizes`, within `[minimum, maximum]`.
    public func continuous(losses: [Double], sizes: [Int], average: Double, minimum: Double, maximum: Double) -> [Double] {
        precondition(losses.count == sizes.count && !losses.isEmpty, "one loss per unit")
        let floorLoss = 1e-30
        var bits = [Double](repeating: 0, count: losses.count)
        var free = Set(losses.indices)
        var fixedBudget = 0.0
        let total = Double(sizes.reduce(0, +))
        for _ in 0...losses.count {
            let freeSize = free.reduce(0.0) { $0 + Double(sizes[$1]) }
            guard freeSize > 0 else { break }
            let target = (average * total - fixedBudget) / freeSize   // the average the free units must meet
            let logG = free.reduce(0.0) { $0 + Double(sizes[$1]) * log2(max(losses[$1], floorLoss)) } / freeSize
            var changed = false
            for u in free { bits[u] = target + (log2(max(losses[u], floorLoss)) - logG) / theta }
            for u in free where bits[u] < minimum || bits[u] > maximum {
                bits[u] = min(max(bits[u], minimum), maximum)
                fixedBudget += bits[u] * Double(sizes[u])
                free.remove(u)
                changed = true
            }
            if !changed { break }
        }
        return bits
    }

    /// Whole widths from `widths` whose size-weighted mean is at most `average` (`choose` over the
    /// modelled losses; all units at the smallest width when even that exceeds the budget).
    public func integer(losses: [Double], sizes: [Int], average: Double, widths: [Int]) -> [Int] {
        precondition(losses.count == sizes.count && !widths.isEmpty, "one loss per unit")
        let choices = losses.indices.map { u in widths.map { (cost: Double($0 * sizes[u]), loss: loss(losses[u], at: Double($0))) } }
        let budget = average * Double(sizes.reduce(0, +))
        guard let chosen = Self.choose(choices, budget: budget) else { return losses.map { _ in widths.min()! } }
        return chosen.map { widths[$0] }
    }

    /// One choice per unit minimising the total loss with the total cost at most `budget`. Each unit's
    /// choices may come in any order; dominated choices (costlier and not better) are never taken.
    /// Returns the index of the chosen choice per unit, or nil when even the cheapest choices exceed
    /// the budget. Ties go to the lower unit index, so the result is deterministic.
    public static func choose(_ choices: [[(cost: Double, loss: Double)]], budget: Double) -> [Int]? {
        // Lower convex hull per unit, by increasing cost: the only choices the greedy can reach.
        let hulls: [[Int]] = choices.map { unit in
            let sorted = unit.indices.sorted { unit[$0].cost < unit[$1].cost || (unit[$0].cost == unit[$1].cost && unit[$0].loss < unit[$1].loss) }
            var hull: [Int] = []
            for i in sorted {
                if let last = hull.last, unit[i].loss >= unit[last].loss { continue }   // dominated
                while hull.count >= 2 {
                    let a = unit[hull[hull.count - 2]], b = unit[hull[hull.count - 1]], c = unit[i]
                    // b is above the segment a–c: drop it.
                    if (b.loss - a.loss) * (c.cost - a.cost) >= (c.loss - a.loss) * (b.cost - a.cost) { hull.removeLast() } else { break }
                }
                hull.append(i)
            }
            return hull
        }
        var step = [Int](repeating: 0, count: choices.count)   // position on the unit's hull
        var used = 0.0
        for u in choices.indices {
            guard let first = hulls[u].first else { return nil }
            used += choices[u][first].cost
        }
        guard used <= budget * (1 + 1e-12) else { return nil }
        func gain(_ u: Int) -> Double? {
            guard step[u] + 1 < hulls[u].count else { return nil }
            let a = choices[u][hulls[u][step[u]]], b = choices[u][hulls[u][step[u] + 1]]
            return (a.loss - b.loss) / max(b.cost - a.cost, .leastNormalMagnitude)
        }
        var heap = GainHeap()
        for u in choices.indices { if let g = gain(u) { heap.push((g, u)) } }
        while let (_, u) = heap.pop() {
            let a = choices[u][hulls[u][step[u]]], b = choices[u][hulls[u][step[u] + 1]]
            guard used + (b.cost - a.cost) <= budget * (1 + 1e-12) else { continue }   // this unit stops here
            used += b.cost - a.cost
            step[u] += 1
            if let g = gain(u) { heap.push((g, u)) }
        }
        return choices.indices.map { hulls[$0][step[$0]] }
    }
}

/// A max-heap of (gain, unit), larger gain first, then lower unit.
private struct GainHeap {
    private var items: [(gain: Double, unit: Int)] = []

    private static func before(_ a: (gain: Double, unit: Int), _ b: (gain: Double, unit: Int)) -> Bool {
        a.gain > b.gain || (a.gain == b.gain && a.unit < b.unit)
    }

    mutating func push(_ item: (gain: Double, unit: Int)) {
        items.append(item)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.before(items[i], items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> (gain: Double, unit: Int)? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var best = i
            if l < items.count && Self.before(items[l], items[best]) { best = l }
            if r < items.count && Self.before(items[r], items[best]) { best = r }
            guard best != i else { break }
            items.swapAt(i, best)
            i = best
        }
        return top
    }
}
