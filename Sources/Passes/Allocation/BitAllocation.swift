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

    /// Whole widths from `widths` whose size-weighted mean is at most `average`.
    public func integer(losses: [Double], sizes: [Int], average: Double, widths: [Int]) -> [Int] {
        precondition(losses.count == sizes.count && !widths.isEmpty, "one loss per unit")
        var level = [Int](repeating: 0, count: losses.count)   // index into widths
        let budget = average * Double(sizes.reduce(0, +))
        var used = losses.indices.reduce(0.0) { $0 + Double(widths[0] * sizes[$1]) }
        while true {
            var best: (unit: Int, gain: Double)?
            for u in losses.indices where level[u] + 1 < widths.count {
                let extra = Double((widths[level[u] + 1] - widths[level[u]]) * sizes[u])
                guard used + extra <= budget + 1e-9 else { continue }
                let gain = (loss(losses[u], at: Double(widths[level[u]])) - loss(losses[u], at: Double(widths[level[u] + 1]))) / extra
                if best == nil || gain > best!.gain { best = (u, gain) }
            }
            guard let (u, _) = best else { break }
            used += Double((widths[level[u] + 1] - widths[level[u]]) * sizes[u])
            level[u] += 1
        }
        return level.map { widths[$0] }
    }
}
