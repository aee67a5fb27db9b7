import TensorCore
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// zstd-compressed checkpoints (`model.safetensors.zst`, `model.gguf.zst`): writing through a
/// `ZstdArchive`, and reading any `.zst` file, ours (seekable, byte-grouped) or a plain zstd stream
/// made by the `zstd` tool.
///
/// Writing streams: the inner file is written by the ordinary writer to a temporary file next to
/// the output, then compressed chunk by chunk from its memory map; the temporary file is removed.
/// Reading decodes the inner file into an unlinked temporary file and memory-maps it, so nothing is
/// held in memory twice; `ZstdArchiveReader` reads single ranges without decoding the rest.
public enum ZstdCheckpoint {
    /// How float tensor data is stored.
    public enum Layout: String, Sendable, CaseIterable {
        /// Byte planes where that makes the file smaller (the default).
        case grouped
        /// The inner file's bytes as they are: `zstd -d` alone restores it byte for byte.
        case plain
    }

    /// `path` without a trailing `.zst`, and whether it had one.
    public static func innerPath(of path: String) -> (path: String, compressed: Bool) {
        path.hasSuffix(".zst") ? (String(path.dropLast(4)), true) : (path, false)
    }

    /// Runs `writeInner` on a temporary path in `destination`'s folder, then compresses that file to
    /// `destination` (which appears only when complete).
    public static func write(to destination: String, level: Int32 = 3, layout: Layout = .grouped, threadCount: Int,
                             writeInner: (String) throws -> Void) throws {
        AtomicFileWriter.removeStaleTemporaries(for: destination)
        let (folder, prefix) = AtomicFileWriter.processPrefix(for: destination)
        let temporary = folder + "/" + prefix + "inner-\(UInt64.random(in: 0..<UInt64.max))"
        defer { unlink(temporary) }
        try writeInner(temporary)
        let source = try MappedFile(path: temporary)
        let (inner, segments) = try self.segments(of: source.bytes, file: temporary)
        try ZstdArchive.write(source: source, inner: inner, segments: layout == .plain ? [] : segments,
                              level: level, threadCount: threadCount, to: destination)
    }

    /// The inner format and the float tensor ranges (F32 width 4, F16/BF16 width 2) of a safetensors
    /// or GGUF file's bytes.
    public static func segments(of bytes: UnsafeRawBufferPointer, file: String) throws -> (String, [ZstdArchive.Segment]) {
        if bytes.count >= 4 && Array(bytes.prefix(4)) == GGUFHeader.magic {
            let header = try GGUFHeader(fileBytes: bytes, file: file)
            let segments = header.tensors.compactMap { t -> ZstdArchive.Segment? in
                let width: Int
                switch t.type {
                case .f32?: width = 4
                case .f16?, .bf16?: width = 2
                default: return nil
                }
                let start = header.dataOffset + t.offset
                return ZstdArchive.Segment(range: start..<(start + t.byteCount), width: width)
            }
            return ("gguf", segments)
        }
        let header = try SafetensorsHeader(fileBytes: bytes, file: file)
        let segments = header.tensors.compactMap { t -> ZstdArchive.Segment? in
            let width: Int
            switch t.dtype {
            case .f32: width = 4
            case .f16, .bf16: width = 2
            default: return nil
            }
            return ZstdArchive.Segment(range: (header.dataOffset + t.dataRange.lowerBound)..<(header.dataOffset + t.dataRange.upperBound), width: width)
        }
        return ("safetensors", segments)
    }

    /// Opens a `.zst` checkpoint: decodes it to an unlinked temporary file and reads that.
    public static func open(path: String, threadCount: Int = 2, visit: CheckpointReader.DecodedTensorVisitor? = nil) throws -> Checkpoint {
        let temporary = temporaryFolder() + "/modelpress-zst-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))"
        defer { unlink(temporary) }
        try extract(path: path, to: temporary, threadCount: threadCount)
        if try CheckpointFormat.detect(path: temporary).format == .zstd {
            throw ZstdArchiveError(file: path, tensor: nil, message: "decodes to another zstd file (nested compression is not read)")
        }
        do {
            return try CheckpointReader.open(path: temporary, visit: visit)
        } catch let error as InputDataError {
            // Name the user's file, not the temporary one.
            let message = "\(error)".split(separator: temporary, omittingEmptySubsequences: false).joined(separator: path)
            throw ZstdArchiveError(file: path, tensor: nil, message: "decoded \(message)")
        }
    }

    /// The inner format of a `.zst` file (`safetensors` or `gguf`), decoding at most its header.
    public static func innerFormat(path: String) throws -> String? {
        let file = try MappedFile(path: path)
        if ZstdArchiveReader.isArchive(file.bytes) { return try ZstdArchiveReader(path: path).inner }
        return nil
    }

    /// Writes the exact inner file of the `.zst` file at `path` to `destination` (atomically).
    public static func extract(path: String, to destination: String, threadCount: Int = 2) throws {
        let file = try MappedFile(path: path)
        if ZstdArchiveReader.isArchive(file.bytes) {
            let reader = try ZstdArchiveReader(path: path)
            let names = (try? tensorRanges(reader)) ?? []
            try reader.extract(to: destination, threadCount: threadCount) { range in names.first { $0.range.overlaps(range) }?.name }
            return
        }
        let writer = try AtomicFileWriter(destination: destination)
        do {
            try ZstdCodec().decompressStream(file.bytes) { try writer.write($0) }
        } catch let error as ZstdError {
            throw ZstdArchiveError(file: path, tensor: nil, message: error.message)
        }
        try writer.commit()
    }

    /// The header of a seekable `.zst` file holding plain dense safetensors (no quantized, compact
    /// sparse or shared tensors), decoding only the frames of the header; nil for any other file (which must be
    /// decoded whole).
    public static func denseSafetensorsHeader(path: String) throws -> SafetensorsHeader? {
        let file = try MappedFile(path: path)
        guard ZstdArchiveReader.isArchive(file.bytes), let header = try safetensorsHeader(ZstdArchiveReader(path: path)) else { return nil }
        let names = header.tensors.map(\.name)
        let compressed = header.metadata.contains { $0.key == CompressedTensorsLayout.metadataKey || $0.key == SharedTensorLayout.metadataKey }
            || !BitsAndBytesLayout.weights(in: names).isEmpty
            || SparseLayout.storesCompactTensors(metadataKeys: header.metadata.map(\.key), tensorNames: names)
        return compressed ? nil : header
    }

    /// The safetensors header of an archive, from its first frames only; nil when the inner file is
    /// not safetensors or its length prefix does not fit.
    static func safetensorsHeader(_ reader: ZstdArchiveReader) throws -> SafetensorsHeader? {
        guard reader.inner == "safetensors", reader.size >= 8 else { return nil }
        let length = try reader.read(0..<8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard length <= Int(SafetensorsHeader.maximumHeaderLength), length <= reader.size - 8 else { return nil }
        return try reader.read(0..<(8 + length)).withUnsafeBytes { try SafetensorsHeader(prefix: $0, fileSize: reader.size, file: reader.path) }
    }

    /// Names and inner-file ranges of the tensors of a safetensors archive (from its header alone).
    static func tensorRanges(_ reader: ZstdArchiveReader) throws -> [(name: String, range: Range<Int>)] {
        guard let header = try safetensorsHeader(reader) else { return [] }
        return header.tensors.map { ($0.name, (header.dataOffset + $0.dataRange.lowerBound)..<(header.dataOffset + $0.dataRange.upperBound)) }
    }

    static func temporaryFolder() -> String {
        if let t = getenv("TMPDIR"), let s = String(validatingCString: t), !s.isEmpty { return s }
        return "/tmp"
    }
}
