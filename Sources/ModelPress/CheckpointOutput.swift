import TensorCore
import CheckpointFormats

/// Where a command writes a checkpoint: the extension picks the writer (`.safetensors`, `.gguf`),
/// and a trailing `.zst` compresses the result as a seekable `ZstdArchive` (level `zstdLevel`,
/// float data in byte planes unless `layout` is `.plain`).
public struct CheckpointOutput: Sendable {
    public enum Format: String, Sendable { case safetensors, gguf }

    public let path: String
    public let format: Format
    /// Set when the output is zstd-compressed.
    public var zstdLevel: Int32?
    public var layout: ZstdCheckpoint.Layout = .grouped

    /// The default zstd level for `.zst` outputs (float planes use their own profile).
    public static let defaultZstdLevel: Int32 = 3

    public init(path: String) throws(UsageError) {
        let (inner, compressed) = ZstdCheckpoint.innerPath(of: path)
        if inner.hasSuffix(".safetensors") {
            format = .safetensors
        } else if inner.hasSuffix(".gguf") {
            format = .gguf
        } else {
            throw UsageError("\(path): the output extension picks the writer; use .safetensors or .gguf, optionally with .zst")
        }
        self.path = path
        zstdLevel = compressed ? Self.defaultZstdLevel : nil
    }

    /// Runs `writeInner` with the path the inner writer should write to; compresses afterwards when
    /// the output is `.zst`.
    public func write(threadCount: Int, _ writeInner: (String) throws -> Void) throws {
        guard let level = zstdLevel else { return try writeInner(path) }
        try ZstdCheckpoint.write(to: path, level: level, layout: layout, threadCount: threadCount, writeInner: writeInner)
    }
}
