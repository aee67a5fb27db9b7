import TensorCore
import CheckpointFormats

/// A `prune.*` pass: it takes the weight matrices by default, runs in the `prune` stage (before the
/// tensor's quantizer, see `PassStage`), needs a dense float tensor whose rows split into the
/// target's groups, and leaves it dense, in its own dtype, with exact zeros and a sparsity mark.
protocol PruningPass: CompressionPass {
    /// How much the pass removes, and in which pattern.
    var target: PruningTarget { get }
}

extension PruningPass {
    public static var stage: PassStage { .prune }

    public static func selectsByDefault(name: String, rank: Int) -> Bool { isWeightMatrix(name: name, rank: rank) }

    public func problem(with entry: CheckpointManifest.Entry) -> String? {
        guard let dtype = entry.dtype, dtype.isConvertibleFloat else { return "expects a dense float tensor, found \(entry.encoding)" }
        return target.problem(with: entry.shape)
    }
}

extension CompressionPass {
    /// Zeroes the masked `values` and stores them in `entry` in its own dtype, marked sparse.
    static func storePruned(_ values: inout [Float], mask: [Bool], in entry: inout TensorEntry, pattern: SparsityPattern) throws {
        for i in values.indices where mask[i] { values[i] = 0 }
        guard case .dense(let tensor) = entry.payload else { return }
        entry.payload = .dense(try DenseTensor(floats: values, shape: tensor.shape, dtype: tensor.dtype))
        entry.sparsity = pattern
    }
}
