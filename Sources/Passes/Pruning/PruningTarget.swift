import TensorCore
import CheckpointFormats
import Recipes

/// How much a pruning step removes, and in which pattern (the options every `prune.*` pass shares).
///
/// - `pattern=unstructured` (default): `sparsity=p` removes exactly `round(p·n)` weights (ties to
///   even) of every tensor of `n` weights (the pass says where: per tensor, per row, per block).
/// - `pattern=N:M` keeps `N` of every `M` consecutive weights along the input dimension of each row
///   (the hardware convention: `2:4` keeps 2 of 4). The sparsity is then `1 − N/M`; a `sparsity=`
///   that says otherwise is a recipe error.
public struct PruningTarget: Sendable, Equatable {
    public var sparsity: Double
    public var pattern: SparsityPattern

    public init(sparsity: Double, pattern: SparsityPattern = .unstructured) {
        self.sparsity = sparsity
        self.pattern = pattern
    }

    /// Reads `sparsity=` and `pattern=`, reporting contradictions at their options.
    public init(reading reader: inout OptionReader) {
        let given = reader.has("sparsity")
        sparsity = reader.fraction("sparsity", default: 0.5, help: "fraction of the weights set to zero (unstructured; implied by an N:M pattern)")
        let text = reader.text("pattern", help: "unstructured | N:M, keeping N of every M weights along a row (2:4, 4:8); default unstructured")
        pattern = .unstructured
        if let text {
            if let parsed = SparsityPattern(text) { pattern = parsed } else {
                reader.report("pattern", "'\(text)' is not unstructured or N:M (keep N of every M, 1 ≤ N < M ≤ 64)")
            }
        }
        if case .nOfM(let n, let m) = pattern {
            let implied = 1 - Double(n) / Double(m)
            if given && abs(sparsity - implied) > 1e-9 {
                reader.report("sparsity", "pattern=\(n):\(m) keeps \(n) of every \(m) weights, a sparsity of \(implied * 100)%; remove sparsity= or make it agree")
            }
            sparsity = implied
        }
    }

    /// The number of weights removed from `n` under an unstructured target: `round(p·n)`, ties to even.
    public func prunedCount(of n: Int) -> Int {
        min(n, max(0, Int((sparsity * Double(n)).rounded(.toNearestOrEven))))
    }

    /// The weights removed from the first `end` of a sequence (`prunedCount(of: end)`): the quota of
    /// the part `start..<end` is `cumulativeCount(end) − cumulativeCount(start)`, so the parts of a
    /// tensor add up to exactly `prunedCount(of: n)`.
    func cumulativeCount(_ end: Int) -> Int { prunedCount(of: end) }

    /// The problem with pruning a tensor of `shape` this way, if any.
    public func problem(with shape: Shape) -> String? {
        guard case .nOfM(_, let m) = pattern else { return nil }
        let columns = shape.dimensions.last ?? 1
        return columns % m == 0 ? nil : "rows of \(columns) weights do not split into groups of \(m) (pattern=\(pattern))"
    }

    /// Marks, in one row (`scores` and `mask` of the row's length, a multiple of `M`), the `M − N`
    /// lowest scores of every group of `M` (ties to the lower position).
    static func markGroups(_ scores: UnsafeBufferPointer<Float>, kept: Int, group: Int, into mask: UnsafeMutableBufferPointer<Bool>) {
        var start = 0
        while start < scores.count {
            SmallestScores.mark(UnsafeBufferPointer(rebasing: scores[start..<(start + group)]), count: group - kept,
                                into: UnsafeMutableBufferPointer(rebasing: mask[start..<(start + group)]))
            start += group
        }
    }
}
