import TensorCore
import CheckpointFormats
import Recipes

/// `prune.magnitude`: zero the weights of smallest `|w|` (algorithms.md §4.1). No weight update.
///
/// ```
/// prune.magnitude sparsity=50% scope=layer pattern=unstructured ignore="lm_head.weight"
/// ```
/// - `scope=layer` (default): every selected tensor of `n` weights loses exactly `round(p·n)`.
/// - `scope=global`: one threshold over all selected tensors, which lose `round(p·Σn)` together
///   (a plan step reads every tensor three times: two radix passes, then its share of the ties;
///   one tensor in memory at a time). Raw `|w|` is
///   compared across tensors, so tensors of small scale lose more (as `torch`'s global pruning).
/// - `pattern=N:M`: in every group of `M` consecutive weights along each row, the `M − N` smallest go.
/// Ties: among equal `|w|`, the earlier element (row-major, and earlier tensor for global) goes first.
/// The tensor keeps its dtype; pruned weights are exact zeros and the entry is marked sparse, so a
/// safetensors output stores it compactly when that is smaller.
public struct MagnitudePruning: PruningPass {
    public static let name = "prune.magnitude"
    public static let summary = "magnitude pruning: exact sparsity per tensor or over all selected tensors, or N:M along rows"

    public enum Scope: String, Sendable { case layer, global }

    public struct Options: PassOptions {
        public var target: PruningTarget
        public var scope: Scope

        public init(reading reader: inout OptionReader) {
            target = PruningTarget(reading: &reader)
            scope = Scope(rawValue: reader.choice("scope", default: "layer", from: ["layer", "global"], help: "layer: the sparsity in every tensor; global: over all selected tensors")) ?? .layer
            if scope == .global, target.pattern != .unstructured {
                reader.report("scope", "an N:M pattern is local to each group of weights; scope=global needs pattern=unstructured")
            }
        }
    }

    public let options: Options
    public init(options: Options) { self.options = options }
    var target: PruningTarget { options.target }

    /// `scope=global`: the threshold key over all selected tensors, and each tensor's share of the
    /// elements equal to it (in tensor order), as `.pruneBelow` settings.
    public func plan(_ checkpoint: Checkpoint, selected: [Int], consumers: [Int: any CompressionPass], context: inout PassContext) throws {
        guard options.scope == .global else { return }
        let total = selected.reduce(0) { $0 + checkpoint.entries[$1].elementCount }
        var search = ScoreThreshold(count: options.target.prunedCount(of: total))
        let entries = selected.map { checkpoint.entries[$0] }
        for entry in entries { try Self.finiteValues(of: entry).withUnsafeBufferPointer { search.addCoarse($0) } }
        search.resolveCoarse()
        for entry in entries { try Self.finiteValues(of: entry).withUnsafeBufferPointer { search.addFine($0) } }
        let cut = search.count == 0 ? (key: UInt32(0), ties: 0) : search.resolveFine()
        var ties = cut.ties
        for entry in entries {
            let equal = search.count == 0 ? 0 : try Self.finiteValues(of: entry).reduce(0) { $0 + (SmallestScores.key($1) == cut.key ? 1 : 0) }
            let taken = min(equal, ties)
            ties -= taken
            context.plan.set(.pruneBelow(key: search.count == 0 ? 0 : cut.key, ties: taken), for: entry.name)
        }
        let location = context.location.map { " (\($0))" } ?? ""
        context.note?("\(Self.name)\(location): global threshold |w| ≤ \(Float(bitPattern: cut.key)) removes \(search.count) of \(total) weights")
    }

    public func apply(to entry: inout TensorEntry, context: PassContext) throws {
        var values = try Self.finiteValues(of: entry)
        var mask = [Bool](repeating: false, count: values.count)
        let columns = entry.shape.dimensions.last ?? values.count
        values.withUnsafeBufferPointer { w in
            mask.withUnsafeMutableBufferPointer { mask in
                switch (options.target.pattern, options.scope) {
                case (.nOfM(let n, let m), _):
                    for start in stride(from: 0, to: w.count, by: max(columns, 1)) {
                        PruningTarget.markGroups(UnsafeBufferPointer(rebasing: w[start..<(start + columns)]), kept: n, group: m,
                                                 into: UnsafeMutableBufferPointer(rebasing: mask[start..<(start + columns)]))
                    }
                case (.unstructured, .layer):
                    SmallestScores.mark(w, count: options.target.prunedCount(of: w.count), into: mask)
                case (.unstructured, .global):
                    guard case .pruneBelow(let key, var ties) = context.plan[entry.name] else { return }
                    for i in 0..<w.count {
                        let k = SmallestScores.key(w[i])
                        if k < key { mask[i] = true } else if k == key && ties > 0 { mask[i] = true; ties -= 1 }
                    }
                }
            }
        }
        if options.scope == .global, options.target.pattern == .unstructured, context.plan[entry.name] == nil {
            throw PassError(pass: Self.name, tensor: entry.name, message: "scope=global, but no threshold was planned for it")
        }
        try Self.storePruned(&values, mask: mask, in: &entry, pattern: options.target.pattern)
    }
}
