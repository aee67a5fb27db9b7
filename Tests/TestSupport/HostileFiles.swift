import CheckpointFormats
import TensorCore

/// Hand-built safetensors bytes, valid or not, for the hostile-input tests.
///
/// Nothing here pads or validates: `make` writes exactly `[u64 LE header length][header][data]`,
/// so a test controls every byte the reader sees.
public enum SafetensorsBytes {
    /// `[u64 LE N][header as UTF-8 (N bytes)][data]`.
    public static func make(header: String, data: [UInt8] = []) -> [UInt8] {
        make(headerBytes: Array(header.utf8), data: data)
    }

    /// `[u64 LE N][headerBytes (N bytes)][data]`, for headers that are not valid UTF-8.
    public static func make(headerBytes: [UInt8], data: [UInt8] = []) -> [UInt8] {
        lengthPrefix(UInt64(headerBytes.count)) + headerBytes + data
    }

    /// A length prefix claiming `length` header bytes, followed by `body` (whatever its size).
    public static func lengthPrefix(_ length: UInt64, then body: [UInt8] = []) -> [UInt8] {
        withUnsafeBytes(of: length.littleEndian, Array.init) + body
    }

    /// The JSON member for one tensor: `"name":{"dtype":...,"shape":[...],"data_offsets":[b,e]}`.
    public static func entry(_ name: String, _ dtype: String, _ shape: [Int], _ begin: Int, _ end: Int) -> String {
        let dims = shape.map(String.init).joined(separator: ",")
        return JSONWriter.quoted(name) + ":{\"dtype\":\"\(dtype)\",\"shape\":[\(dims)],\"data_offsets\":[\(begin),\(end)]}"
    }

    /// `{` + members joined by commas + `}`.
    public static func header(_ members: String...) -> String {
        "{" + members.joined(separator: ",") + "}"
    }

    /// Byte offset of the data section for an unpadded `header`: 8 + its UTF-8 length.
    public static func dataOffset(header: String) -> Int { 8 + header.utf8.count }

    /// `count` bytes of a recognisable, non-constant pattern.
    public static func pattern(_ count: Int, seed: UInt8 = 1) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &* 7 &+ 3) }
    }

    /// Validates `bytes` as a whole safetensors file held in memory; `file` names it in errors.
    public static func parse(_ bytes: [UInt8], file: String = "memory.safetensors") throws(SafetensorsError) -> SafetensorsHeader {
        do {
            return try bytes.withUnsafeBytes { try SafetensorsHeader(fileBytes: $0, file: file) }
        } catch let error as SafetensorsError {
            throw error
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }

    /// A valid two-tensor file: `a` F32 [2] (8 bytes) then `b` I8 [3] (3 bytes), with one metadata key.
    public static func validPair() -> [UInt8] {
        let h = header("\"__metadata__\":{\"format\":\"pt\"}", entry("a", "F32", [2], 0, 8), entry("b", "I8", [3], 8, 11))
        return make(header: h, data: pattern(11))
    }
}

/// Hand-built sharded checkpoints (`model.safetensors.index.json` plus shard files).
public enum ShardedFiles {
    /// An index document mapping tensors to shards, in the order given.
    public static func index(_ weightMap: [(tensor: String, shard: String)], totalSize: Int? = nil) -> String {
        let map = weightMap.map { JSONWriter.quoted($0.tensor) + ":" + JSONWriter.quoted($0.shard) }.joined(separator: ",")
        let metadata = totalSize.map { "\"metadata\":{\"total_size\":\($0)}," } ?? ""
        return "{" + metadata + "\"weight_map\":{" + map + "}}"
    }

    /// A valid shard holding F32 tensors of the given element counts, back to back, with pattern bytes.
    public static func shard(_ tensors: [(name: String, elements: Int)], seed: UInt8 = 1) -> [UInt8] {
        var members: [String] = []
        var offset = 0
        for t in tensors {
            members.append(SafetensorsBytes.entry(t.name, "F32", [t.elements], offset, offset + 4 * t.elements))
            offset += 4 * t.elements
        }
        return SafetensorsBytes.make(header: "{" + members.joined(separator: ",") + "}", data: SafetensorsBytes.pattern(offset, seed: seed))
    }

    /// Writes a two-shard checkpoint into `folder`: shard 1 holds `a` [2] and `b` [3], shard 2
    /// holds `c` [4]; the index lists them as c, a, b (not shard order). Returns the index path.
    @discardableResult
    public static func writeTwoShards(in folder: TemporaryDirectory) throws -> String {
        try folder.write(shard([("a", 2), ("b", 3)], seed: 1), to: "model-00001-of-00002.safetensors")
        try folder.write(shard([("c", 4)], seed: 2), to: "model-00002-of-00002.safetensors")
        return try folder.write(text: index([("c", "model-00002-of-00002.safetensors"), ("a", "model-00001-of-00002.safetensors"),
                                             ("b", "model-00001-of-00002.safetensors")], totalSize: 36),
                                to: ShardedSafetensors.indexFileName)
    }
}

/// A test expectation about a checkpoint that did not hold.
public struct CheckpointExpectationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The dense tensor named `name` in `checkpoint`; throws if there is none or it is not dense.
public func denseTensor(_ checkpoint: Checkpoint, _ name: String) throws -> DenseTensor {
    guard let entry = checkpoint[name] else { throw CheckpointExpectationError("no tensor named '\(name)'") }
    guard case .dense(let tensor) = entry.payload else { throw CheckpointExpectationError("tensor '\(name)' is not dense") }
    return tensor
}
