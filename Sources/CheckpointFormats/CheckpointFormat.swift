import TensorCore

/// The container formats ModelPress recognises, detected from content (magic bytes), not extensions.
public enum CheckpointFormat: String, Sendable, CustomStringConvertible {
    case safetensors
    case shardedSafetensors = "sharded safetensors"
    case gguf = "GGUF"
    case zstd = "zstd-compressed"

    public var description: String { rawValue }

    /// Detects the format of the file or folder at `path`.
    /// A folder is a sharded checkpoint when it holds `model.safetensors.index.json`, else a single
    /// checkpoint when it holds `model.safetensors`.
    public static func detect(path: String) throws -> (format: CheckpointFormat, path: String) {
        if FileSystem.isDirectory(path) {
            let index = path + "/" + ShardedSafetensors.indexFileName
            if FileSystem.isRegularFile(index) { return (.shardedSafetensors, index) }
            let single = path + "/model.safetensors"
            if FileSystem.isRegularFile(single) { return (.safetensors, single) }
            throw CheckpointOpenError.noCheckpointInFolder(path)
        }
        let file = try MappedFile(path: path)
        let head = Array(file.bytes.prefix(8))
        if head.starts(with: [0x47, 0x47, 0x55, 0x46]) { return (.gguf, path) }           // "GGUF"
        if head.starts(with: [0x28, 0xB5, 0x2F, 0xFD]) { return (.zstd, path) }           // zstd frame magic
        // A safetensors file starts with a plausible u64 header length (whose low byte may be '{').
        if head.count == 8 {
            let length = head.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            if length <= SafetensorsHeader.maximumHeaderLength && length <= UInt64(file.byteCount - 8) { return (.safetensors, path) }
        }
        if path.hasSuffix(".json") || head.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "{") {
            return (.shardedSafetensors, path)
        }
        return (.safetensors, path)
    }
}

extension CheckpointFormat {
    /// Every file a checkpoint path reads: the file itself, or a sharded index and all its shards.
    public static func sourceFiles(path: String) throws -> [String] {
        let (format, resolved) = try detect(path: path)
        guard format == .shardedSafetensors else { return [resolved] }
        let folder = resolved.lastIndex(of: "/").map { String(resolved[..<$0]) } ?? "."
        var seen = Set<[UInt8]>()
        let shards = try ShardedSafetensors.weightMap(indexPath: resolved).map(\.shard).filter { seen.insert(Array($0.utf8)).inserted }
        return [resolved] + shards.map { folder + "/" + $0 }
    }
}

/// Opens any supported checkpoint path as a `Checkpoint`.
public enum CheckpointReader {
    /// Opens a `.safetensors` file, a sharded index (or its folder), a GGUF file or a `.zst` archive of
    /// one, with quantized tensors put back together (`CompressedTensorsLayout`, `GGUFQuantizedLayout`)
    /// and, for safetensors, compactly stored sparse tensors made dense again (`SparseLayout`).
    ///
    /// `visit` (optional) sees each tensor a layout puts back together (a quantized or compact sparse
    /// one, decoded into memory) as soon as it is decoded, and returns what the checkpoint keeps in its
    /// place: a caller that measures tensors one at a time (`modelpress report`) keeps a small
    /// stand-in, so the decoded tensors are never all in memory together.
    public static func open(path: String, visit: DecodedTensorVisitor? = nil) throws -> Checkpoint {
        let (format, resolved) = try CheckpointFormat.detect(path: path)
        switch format {
        case .safetensors:
            return try collapseSafetensors(SafetensorsReader.open(path: resolved), file: resolved, visit: visit)
        case .shardedSafetensors:
            return try collapseSafetensors(ShardedSafetensors.open(indexPath: resolved), file: resolved, visit: visit)
        case .gguf: return try SharedTensorLayout.collapse(GGUFQuantizedLayout.collapse(GGUFReader.open(path: resolved), file: resolved, visit: visit), file: resolved)
        case .zstd: return try ZstdCheckpoint.open(path: resolved, visit: visit)
        }
    }

    /// Called with a tensor just put back together from its stored parts; returns the entry to keep.
    public typealias DecodedTensorVisitor = (TensorEntry) throws -> TensorEntry

    private static func collapseSafetensors(_ raw: Checkpoint, file: String, visit: DecodedTensorVisitor?) throws -> Checkpoint {
        let dense = try SparseLayout.collapse(raw, file: file, visit: visit)
        return try SharedTensorLayout.collapse(CompressedTensorsLayout.collapse(dense, file: file, visit: visit), file: file)
    }
}

/// Failures to find or open a checkpoint at a path.
public enum CheckpointOpenError: Error, Equatable, Sendable, CustomStringConvertible {
    case noCheckpointInFolder(String)
    case notYetSupported(path: String, format: CheckpointFormat)

    public var description: String {
        switch self {
        case .noCheckpointInFolder(let p): "\(p): folder holds neither \(ShardedSafetensors.indexFileName) nor model.safetensors"
        case .notYetSupported(let p, let f): "\(p): \(f) input is not yet supported"
        }
    }
}
