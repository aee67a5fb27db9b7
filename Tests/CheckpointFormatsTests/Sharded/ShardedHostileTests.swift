import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// Hostile sharded checkpoints (`model.safetensors.index.json` + shards), each with its exact error,
/// and the happy path through the index and through its folder.
@Suite("Sharded safetensors hostile input")
struct ShardedHostileTests {
    private let shard1 = "model-00001-of-00002.safetensors"
    private let shard2 = "model-00002-of-00002.safetensors"

    /// Writes `index` as the index file of a fresh folder and asserts that opening it fails with `kind`.
    private func expectIndexRejected(_ index: String, _ kind: ShardedCheckpointError.Kind,
                                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let dir = try TemporaryDirectory(prefix: "shard-index")
        let indexPath = try dir.write(text: index, to: ShardedSafetensors.indexFileName)
        #expect(throws: ShardedCheckpointError(file: indexPath, kind: kind), sourceLocation: sourceLocation) {
            try ShardedSafetensors.open(indexPath: indexPath)
        }
        // Through the folder, the same error.
        #expect(throws: ShardedCheckpointError(file: indexPath, kind: kind), sourceLocation: sourceLocation) {
            try CheckpointReader.open(path: dir.path)
        }
    }

    private func dense(_ checkpoint: Checkpoint, _ name: String) throws -> DenseTensor { try denseTensor(checkpoint, name) }

    // MARK: The index document

    @Test("an index that is not JSON is invalidJSON")
    func indexNotJSON() throws {
        try expectIndexRejected(#"{"weight_map":"#, .invalidJSON("unexpected end of input at byte 14"))
        try expectIndexRejected(#"{"weight_map":{"a":"x.safetensors",}}"#, .invalidJSON("expected a string key at byte 35"))
        try expectIndexRejected("", .invalidJSON("unexpected end of input at byte 0"))
        try expectIndexRejected(String(repeating: "[", count: 100_000), .invalidJSON("nesting deeper than 64 levels at byte 64"))
    }

    @Test("an index that is not an object is invalidJSON")
    func indexNotObject() throws {
        try expectIndexRejected(#"["weight_map"]"#, .invalidJSON("the index is an array, not an object"))
    }

    @Test("weight_map missing is invalidWeightMap")
    func weightMapMissing() throws {
        try expectIndexRejected(#"{"metadata":{"total_size":0}}"#, .invalidWeightMap("missing"))
    }

    @Test("weight_map that is not an object is invalidWeightMap")
    func weightMapNotObject() throws {
        try expectIndexRejected(#"{"weight_map":["a","x.safetensors"]}"#, .invalidWeightMap("it is an array, not an object"))
        try expectIndexRejected(#"{"weight_map":null}"#, .invalidWeightMap("it is null, not an object"))
    }

    @Test("weight_map given twice is invalidWeightMap (Python would read the last, a naive reader the first)")
    func weightMapTwice() throws {
        try expectIndexRejected(#"{"weight_map":{"a":"x.safetensors"},"weight_map":{"a":"y.safetensors"}}"#, .invalidWeightMap("given more than once"))
    }

    @Test("a weight_map value that is not a string is invalidWeightMap")
    func weightMapValueNotString() throws {
        try expectIndexRejected(#"{"weight_map":{"a":1}}"#, .invalidWeightMap("the shard of 'a' is a number, not a string"))
        try expectIndexRejected(#"{"weight_map":{"a":["x.safetensors"]}}"#, .invalidWeightMap("the shard of 'a' is an array, not a string"))
    }

    @Test("a tensor listed twice in weight_map is duplicateTensor")
    func duplicateKey() throws {
        try expectIndexRejected(ShardedFiles.index([("a", shard1), ("b", shard1), ("a", shard2)]), .duplicateTensor("a"))
        // Even when both entries agree.
        try expectIndexRejected(ShardedFiles.index([("a", shard1), ("a", shard1)]), .duplicateTensor("a"))
    }

    @Test("a shard name that is not a plain file name is invalidShardName",
          arguments: ["sub/model.safetensors", "../model.safetensors", "/etc/passwd", "..", ".", "", "a\0b.safetensors", "dir/"])
    func badShardName(_ name: String) throws {
        try expectIndexRejected(ShardedFiles.index([("a", name)]), .invalidShardName(name))
    }

    @Test("the index's metadata is free-form")
    func freeFormMetadata() throws {
        let dir = try TemporaryDirectory(prefix: "shard-meta")
        try dir.write(ShardedFiles.shard([("a", 1)]), to: shard1)
        let index = #"{"metadata":{"total_size":"4","extra":[1,{"x":null}]},"weight_map":{"a":"\#(shard1)"},"other":true}"#
        let checkpoint = try ShardedSafetensors.open(indexPath: dir.write(text: index, to: ShardedSafetensors.indexFileName))
        #expect(checkpoint.entries.map(\.name) == ["a"])
    }

    // MARK: Shards

    @Test("a shard file that does not exist is missingShard, naming the shard and a tensor")
    func missingShard() throws {
        let dir = try TemporaryDirectory(prefix: "shard-missing")
        try dir.write(ShardedFiles.shard([("a", 2)]), to: shard1)
        let indexPath = try dir.write(text: ShardedFiles.index([("a", shard1), ("c", shard2), ("d", shard2)]), to: ShardedSafetensors.indexFileName)
        #expect(throws: ShardedCheckpointError(file: indexPath, kind: .missingShard(shard: shard2, tensor: "c"))) {
            try ShardedSafetensors.open(indexPath: indexPath)
        }
        #expect(throws: ShardedCheckpointError(file: indexPath, kind: .missingShard(shard: shard2, tensor: "c"))) {
            try CheckpointReader.open(path: dir.path)
        }
        let error = ShardedCheckpointError(file: indexPath, kind: .missingShard(shard: shard2, tensor: "c"))
        #expect(error.description.contains(shard2) && error.description.contains("'c'") && error.description.hasPrefix(indexPath))
    }

    @Test("a shard path that exists but is not a file is an I/O error, not 'does not exist'")
    func shardIsFolder() throws {
        let dir = try TemporaryDirectory(prefix: "shard-folder")
        try dir.makeFolder(shard1)
        let indexPath = try dir.write(text: ShardedFiles.index([("a", shard1)]), to: ShardedSafetensors.indexFileName)
        #expect(throws: FileAccessError.notARegularFile(path: dir.url(shard1))) {
            try ShardedSafetensors.open(indexPath: indexPath)
        }
    }

    @Test("the index maps a tensor to a shard that lacks it: tensorMissingFromShard")
    func tensorMissingFromShard() throws {
        let dir = try TemporaryDirectory(prefix: "shard-lacks")
        try dir.write(ShardedFiles.shard([("a", 2), ("b", 3)]), to: shard1)
        let indexPath = try dir.write(text: ShardedFiles.index([("a", shard1), ("x", shard1), ("b", shard1)]), to: ShardedSafetensors.indexFileName)
        #expect(throws: ShardedCheckpointError(file: indexPath, kind: .tensorMissingFromShard(tensor: "x", shard: shard1))) {
            try ShardedSafetensors.open(indexPath: indexPath)
        }
    }

    @Test("a shard holds a tensor the index does not map to it: tensorNotInIndex")
    func tensorNotInIndex() throws {
        let dir = try TemporaryDirectory(prefix: "shard-extra")
        try dir.write(ShardedFiles.shard([("a", 2), ("b", 3)]), to: shard1)
        let indexPath = try dir.write(text: ShardedFiles.index([("a", shard1)]), to: ShardedSafetensors.indexFileName)
        #expect(throws: ShardedCheckpointError(file: indexPath, kind: .tensorNotInIndex(tensor: "b", shard: shard1))) {
            try ShardedSafetensors.open(indexPath: indexPath)
        }
    }

    @Test("a tensor present in two shards is tensorNotInIndex for the shard it is not mapped to")
    func tensorInTwoShards() throws {
        let dir = try TemporaryDirectory(prefix: "shard-two")
        try dir.write(ShardedFiles.shard([("a", 2)]), to: shard1)
        try dir.write(ShardedFiles.shard([("a", 2), ("b", 1)]), to: shard2)
        let indexPath = try dir.write(text: ShardedFiles.index([("a", shard1), ("b", shard2)]), to: ShardedSafetensors.indexFileName)
        #expect(throws: ShardedCheckpointError(file: indexPath, kind: .tensorNotInIndex(tensor: "a", shard: shard2))) {
            try ShardedSafetensors.open(indexPath: indexPath)
        }
    }

    @Test("a malformed shard surfaces its SafetensorsError, naming the shard file")
    func malformedShard() throws {
        let dir = try TemporaryDirectory(prefix: "shard-bad")
        try dir.write(ShardedFiles.shard([("a", 2)]), to: shard1)
        try dir.write(SafetensorsBytes.make(header: SafetensorsBytes.header(SafetensorsBytes.entry("b", "F128", [1], 0, 16)),
                                            data: SafetensorsBytes.pattern(16)), to: shard2)
        let indexPath = try dir.write(text: ShardedFiles.index([("a", shard1), ("b", shard2)]), to: ShardedSafetensors.indexFileName)
        #expect(throws: SafetensorsError(file: dir.url(shard2), kind: .unknownDType(tensor: "b", dtype: "F128"))) {
            try ShardedSafetensors.open(indexPath: indexPath)
        }
        #expect(throws: SafetensorsError(file: dir.url(shard2), kind: .unknownDType(tensor: "b", dtype: "F128"))) {
            try CheckpointReader.open(path: dir.path)
        }
        // A truncated shard.
        try dir.write([1, 2, 3], to: shard2)
        #expect(throws: SafetensorsError(file: dir.url(shard2), kind: .headerTooSmall(fileSize: 3))) {
            try ShardedSafetensors.open(indexPath: indexPath)
        }
        // An empty shard.
        try dir.write([], to: shard2)
        #expect(throws: SafetensorsError(file: dir.url(shard2), kind: .headerTooSmall(fileSize: 0))) {
            try ShardedSafetensors.open(indexPath: indexPath)
        }
    }

    // MARK: Happy path

    @Test("two shards read through the index path and through the folder, ordered shard by shard")
    func twoShards() throws {
        let dir = try TemporaryDirectory(prefix: "shard-ok")
        let indexPath = try ShardedFiles.writeTwoShards(in: dir)
        let detected = try CheckpointFormat.detect(path: dir.path)
        #expect(detected.format == .shardedSafetensors && detected.path == indexPath)
        #expect(try CheckpointFormat.detect(path: indexPath).format == .shardedSafetensors)

        for checkpoint in [try ShardedSafetensors.open(indexPath: indexPath), try CheckpointReader.open(path: dir.path),
                           try CheckpointReader.open(path: indexPath)] {
            // The index lists c, a, b; the result is shard 1 (a, b) then shard 2 (c).
            #expect(checkpoint.entries.map(\.name) == ["a", "b", "c"])
            #expect(checkpoint.entries.map(\.shape) == [Shape([2]), Shape([3]), Shape([4])])
            #expect(checkpoint.byteCount == 36)
            #expect(checkpoint.parameterCount == 9)
            let one = SafetensorsBytes.pattern(20, seed: 1)
            let two = SafetensorsBytes.pattern(16, seed: 2)
            #expect(try dense(checkpoint, "a").storage.array == Array(one[0..<8]))
            #expect(try dense(checkpoint, "b").storage.array == Array(one[8..<20]))
            #expect(try dense(checkpoint, "c").storage.array == two)
            #expect(try dense(checkpoint, "a").storage.isMapped)
        }
    }

    @Test("shard metadata is merged in shard order; the first value of a key wins")
    func metadataMerge() throws {
        let dir = try TemporaryDirectory(prefix: "shard-merge")
        let e = SafetensorsBytes.entry
        try dir.write(SafetensorsBytes.make(header: SafetensorsBytes.header(#""__metadata__":{"format":"pt","k":"1"}"#, e("b", "U8", [1], 0, 1)),
                                            data: [7]), to: shard2)
        try dir.write(SafetensorsBytes.make(header: SafetensorsBytes.header(#""__metadata__":{"format":"np"}"#, e("a", "U8", [1], 0, 1)),
                                            data: [9]), to: shard1)
        let indexPath = try dir.write(text: ShardedFiles.index([("b", shard2), ("a", shard1)]), to: ShardedSafetensors.indexFileName)
        let checkpoint = try ShardedSafetensors.open(indexPath: indexPath)
        #expect(checkpoint.entries.map(\.name) == ["a", "b"])
        #expect(checkpoint.metadata == [MetadataEntry(key: "format", value: .string("np")), MetadataEntry(key: "k", value: .string("1"))])
    }

    @Test("merging a shard with 100,000 metadata keys stays linear")
    func manyMetadataKeys() throws {
        let dir = try TemporaryDirectory(prefix: "shard-manykeys")
        let count = 100_000
        let metadata = (0..<count).map { "\"k\($0)\":\"\($0)\"" }.joined(separator: ",")
        try dir.write(SafetensorsBytes.make(header: "{\"__metadata__\":{" + metadata + "}," + SafetensorsBytes.entry("a", "U8", [1], 0, 1) + "}", data: [1]),
                      to: shard1)
        let indexPath = try dir.write(text: ShardedFiles.index([("a", shard1)]), to: ShardedSafetensors.indexFileName)
        let checkpoint = try ShardedSafetensors.open(indexPath: indexPath)
        #expect(checkpoint.metadata.count == count)
        #expect(checkpoint.metadata.last == MetadataEntry(key: "k\(count - 1)", value: .string("\(count - 1)")))
    }

    @Test("tensor and shard names that are Unicode-equivalent but differ in bytes are distinct")
    func canonicallyEquivalentNames() throws {
        let composed = "\u{E9}", decomposed = "e\u{301}"
        let dir = try TemporaryDirectory(prefix: "shard-unicode")
        try dir.write(ShardedFiles.shard([(composed, 1)], seed: 1), to: composed + ".safetensors")
        try dir.write(ShardedFiles.shard([(decomposed, 2)], seed: 2), to: decomposed + ".safetensors")
        #expect(try dir.entries().count == 2, "the file system keeps both spellings")
        let indexPath = try dir.write(text: ShardedFiles.index([(composed, composed + ".safetensors"), (decomposed, decomposed + ".safetensors")]),
                                      to: ShardedSafetensors.indexFileName)
        let checkpoint = try ShardedSafetensors.open(indexPath: indexPath)
        // Shards in byte order of their names: "e" (0x65) sorts before "é" (0xC3 0xA9).
        #expect(checkpoint.entries.map { Array($0.name.utf8) } == [Array(decomposed.utf8), Array(composed.utf8)])
        #expect(checkpoint.entries.map(\.elementCount) == [2, 1])
    }

    @Test("an empty weight_map is an empty checkpoint")
    func emptyWeightMap() throws {
        let dir = try TemporaryDirectory(prefix: "shard-empty")
        let checkpoint = try ShardedSafetensors.open(indexPath: dir.write(text: #"{"weight_map":{}}"#, to: ShardedSafetensors.indexFileName))
        #expect(checkpoint.entries.isEmpty)
    }
}
