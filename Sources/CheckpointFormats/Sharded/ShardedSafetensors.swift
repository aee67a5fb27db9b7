import TensorCore

/// Reads a sharded safetensors checkpoint through its `model.safetensors.index.json`
/// (`{"metadata": {...}, "weight_map": {"<tensor>": "<shard file>", ...}}`).
///
/// Invariants checked: the weight map names every tensor once; shard names are plain file names in
/// the index's folder; every shard exists and is a valid safetensors file; each shard holds exactly
/// the tensors the index maps to it. Tensors are ordered shard by shard (shard names ascending), then
/// by data offset. Shard metadata is merged in that order (the first value of a key wins).
public enum ShardedSafetensors {
    public static let indexFileName = "model.safetensors.index.json"

    /// The parsed weight map: tensor name to shard file name, in file order.
    public static func weightMap(indexPath: String) throws -> [(tensor: String, shard: String)] {
        let file = try MappedFile(path: indexPath)
        func fail(_ kind: ShardedCheckpointError.Kind) -> ShardedCheckpointError { ShardedCheckpointError(file: indexPath, kind: kind) }
        let json: JSONValue
        do { json = try JSONParser.parse(file.bytes) } catch { throw fail(.invalidJSON(error.description)) }
        guard json.objectMembers != nil else { throw fail(.invalidJSON("the index is \(json.kindName), not an object")) }
        guard let map = json["weight_map"] else { throw fail(.invalidWeightMap("missing")) }
        // Python's json keeps the last of repeated keys and we would read the first: refuse to guess.
        guard json.objectMembers!.filter({ $0.key == "weight_map" }).count == 1 else { throw fail(.invalidWeightMap("given more than once")) }
        guard let members = map.objectMembers else { throw fail(.invalidWeightMap("it is \(map.kindName), not an object")) }
        var seen = Set<[UInt8]>()      // names compare as bytes, as in `Checkpoint`
        var result: [(tensor: String, shard: String)] = []
        for m in members {
            guard let shard = m.value.stringValue else { throw fail(.invalidWeightMap("the shard of '\(m.key)' is \(m.value.kindName), not a string")) }
            guard seen.insert(Array(m.key.utf8)).inserted else { throw fail(.duplicateTensor(m.key)) }
            guard !shard.isEmpty, shard != ".", shard != "..", !shard.contains("/"), !shard.contains("\0") else { throw fail(.invalidShardName(shard)) }
            result.append((m.key, shard))
        }
        return result
    }

    /// Opens all shards named by the index at `indexPath`.
    public static func open(indexPath: String) throws -> Checkpoint {
        let map = try weightMap(indexPath: indexPath)
        let folder = indexPath.lastIndex(of: "/").map { String(indexPath[..<$0]) } ?? "."
        // Shard file names and tensor names compare as bytes (two spellings of "é" are two files).
        var tensorsByShard: [[UInt8]: (shard: String, tensors: [String])] = [:]
        for (tensor, shard) in map { tensorsByShard[Array(shard.utf8), default: (shard, [])].tensors.append(tensor) }
        var entries: [TensorEntry] = []
        var metadata: [MetadataEntry] = []
        var metadataKeys = Set<[UInt8]>()
        for key in tensorsByShard.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let (shard, expected) = tensorsByShard[key]!
            let path = folder + "/" + shard
            let file: MappedFile
            do { file = try MappedFile(path: path) } catch {
                // Only a shard that is not there is bad data; a folder or an unreadable file is an I/O error.
                guard FileSystem.exists(path) else {
                    throw ShardedCheckpointError(file: indexPath, kind: .missingShard(shard: shard, tensor: expected[0]))
                }
                throw error
            }
            let part = try SafetensorsReader.checkpoint(from: file)
            let expectedSet = Set(expected.map { Array($0.utf8) })
            for entry in part.entries where !expectedSet.contains(Array(entry.name.utf8)) {
                throw ShardedCheckpointError(file: indexPath, kind: .tensorNotInIndex(tensor: entry.name, shard: shard))
            }
            for name in expected where part[name] == nil {
                throw ShardedCheckpointError(file: indexPath, kind: .tensorMissingFromShard(tensor: name, shard: shard))
            }
            entries.append(contentsOf: part.entries)
            for m in part.metadata where metadataKeys.insert(Array(m.key.utf8)).inserted { metadata.append(m) }
        }
        do { return try Checkpoint(entries: entries, metadata: metadata) } catch {
            if case .duplicateTensor(let n) = error { throw ShardedCheckpointError(file: indexPath, kind: .duplicateTensor(n)) }
            throw error
        }
    }
}
