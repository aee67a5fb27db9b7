import TensorCore

/// A malformed sharded checkpoint index (`model.safetensors.index.json`) or shard set (exit 65).
public struct ShardedCheckpointError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    public enum Kind: Equatable, Sendable {
        case invalidJSON(String)
        /// `weight_map` is missing or not an object of strings.
        case invalidWeightMap(String)
        /// A shard file name that is empty, has a path separator or is `.`/`..`.
        case invalidShardName(String)
        /// The index names a shard file that does not exist.
        case missingShard(shard: String, tensor: String)
        /// The index maps a tensor to a shard that does not hold it.
        case tensorMissingFromShard(tensor: String, shard: String)
        /// A shard holds a tensor that the index does not map to it.
        case tensorNotInIndex(tensor: String, shard: String)
        case duplicateTensor(String)
    }

    public let file: String
    public let kind: Kind

    public init(file: String, kind: Kind) {
        self.file = file
        self.kind = kind
    }

    public var description: String {
        let detail: String = switch kind {
        case .invalidJSON(let m): "invalid JSON: \(m)"
        case .invalidWeightMap(let m): "invalid weight_map: \(m)"
        case .invalidShardName(let n): "invalid shard file name '\(n)' (must be a plain file name in the index's folder)"
        case .missingShard(let s, let t): "shard '\(s)' (holding tensor '\(t)') does not exist"
        case .tensorMissingFromShard(let t, let s): "tensor '\(t)' is mapped to shard '\(s)', which does not contain it"
        case .tensorNotInIndex(let t, let s): "shard '\(s)' contains tensor '\(t)', which the index does not map to it"
        case .duplicateTensor(let n): "tensor '\(n)' is listed more than once"
        }
        return "\(file): \(detail)"
    }
}
