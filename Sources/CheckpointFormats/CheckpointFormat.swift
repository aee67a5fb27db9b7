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
        if path.hasSuffix(".json") || head.first.map({ $0 == UInt8(ascii: "{") }) == true { return (.shardedSafetensors, path) }
        return (.safetensors, path)
    }
}

/// Opens any supported checkpoint path as a `Checkpoint`.
public enum CheckpointReader {
    /// Opens a `.safetensors` file, a sharded index (or its folder). Other formats are reported as
    /// not yet supported.
    public static func open(path: String) throws -> Checkpoint {
        let (format, resolved) = try CheckpointFormat.detect(path: path)
        switch format {
        case .safetensors: return try SafetensorsReader.open(path: resolved)
        case .shardedSafetensors: return try ShardedSafetensors.open(indexPath: resolved)
        case .gguf, .zstd: throw CheckpointOpenError.notYetSupported(path: path, format: format)
        }
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
