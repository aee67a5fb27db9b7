import TensorCore

/// Reads a `ZstdArchive` file: the index and seek table are validated when it opens (nothing derived
/// from the file can crash or hang the reader), then any byte range of the inner file is decoded
/// from the frames that hold it, without touching the others.
public final class ZstdArchiveReader: @unchecked Sendable {
    public let path: String
    /// `safetensors` or `gguf`.
    public let inner: String
    /// Bytes of the inner file.
    public let size: Int
    private let file: MappedFile

    /// One chunk of the inner file and the byte ranges (in the archive) of its frames.
    struct Chunk {
        let offset: Int
        let length: Int
        let width: Int
        let frames: [Range<Int>]
    }
    private let chunks: [Chunk]

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let bytes = file.bytes
        func fail(_ message: String) -> ZstdArchiveError { ZstdArchiveError(file: path, tensor: nil, message: message) }
        func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
        guard bytes.count >= 17, u32(bytes.count - 4) == Int(ZstdArchive.seekableFooterMagic) else {
            throw fail("no seek table at the end (not written by modelpress, or truncated)")
        }
        let frameCount = u32(bytes.count - 9)
        let tableSize = 8 + 8 * frameCount + 9
        guard frameCount >= 1, tableSize <= bytes.count else { throw fail("seek table of \(frameCount) frames does not fit the file") }
        let tableStart = bytes.count - tableSize
        guard u32(tableStart) == Int(ZstdArchive.seekTableMagic), u32(tableStart + 4) == tableSize - 8 else { throw fail("malformed seek table") }
        guard bytes[bytes.count - 5] & 0x7F == 0 else { throw fail("unsupported seek table descriptor") }
        var ranges: [Range<Int>] = []
        var decompressed: [Int] = []
        var position = 0
        for f in 0..<frameCount {
            let compressed = u32(tableStart + 8 + 8 * f)
            guard compressed <= tableStart - position else { throw fail("seek table frame \(f) runs past the data") }
            ranges.append(position..<(position + compressed))
            decompressed.append(u32(tableStart + 12 + 8 * f))
            position += compressed
        }
        guard position == tableStart else { throw fail("seek table covers \(position) bytes, the data holds \(tableStart)") }
        // The index frame is the last one listed.
        let indexRange = ranges.removeLast()
        decompressed.removeLast()
        guard indexRange.count >= 8, u32(indexRange.lowerBound) == Int(ZstdArchive.indexMagic),
              u32(indexRange.lowerBound + 4) == indexRange.count - 8 else { throw fail("malformed index frame") }
        let json: JSONValue
        do { json = try JSONParser.parse(UnsafeRawBufferPointer(rebasing: bytes[(indexRange.lowerBound + 8)..<indexRange.upperBound])) } catch {
            throw fail("index is not JSON: \(error)")
        }
        guard json["format"]?.stringValue == "modelpress-zstd", json["version"]?.nonNegativeInt == 1 else { throw fail("unknown index format or version") }
        guard let inner = json["inner"]?.stringValue, ["safetensors", "gguf"].contains(inner) else { throw fail("index names no known inner format") }
        guard let size = json["size"]?.nonNegativeInt, let list = json["chunks"]?.arrayElements else { throw fail("index lacks size or chunks") }
        var chunks: [Chunk] = []
        var offset = 0, frame = 0
        for (i, item) in list.enumerated() {
            guard let pair = item.arrayElements, pair.count == 2, let length = pair[0].nonNegativeInt, let width = pair[1].nonNegativeInt,
                  length > 0, [0, 2, 4].contains(width), width == 0 || length % width == 0 else { throw fail("index chunk \(i) is malformed") }
            // The writer never makes longer chunks, and decoding uses buffers of this size.
            guard length <= ZstdArchive.chunkSize else { throw fail("index chunk \(i) holds \(length) bytes, more than the \(ZstdArchive.chunkSize) a chunk may hold") }
            let frames = width == 0 ? 1 : width
            guard frame + frames <= ranges.count else { throw fail("index lists more frames than the seek table") }
            for k in frame..<(frame + frames) where decompressed[k] != (width == 0 ? length : length / width) {
                throw fail("frame \(k) holds \(decompressed[k]) bytes, the index expects \(width == 0 ? length : length / width)")
            }
            guard length <= size - offset else { throw fail("index chunks exceed the inner size \(size)") }
            chunks.append(Chunk(offset: offset, length: length, width: width, frames: Array(ranges[frame..<(frame + frames)])))
            offset += length
            frame += frames
        }
        guard offset == size, frame == ranges.count else { throw fail("index chunks cover \(offset) of \(size) bytes and \(frame) of \(ranges.count) frames") }
        self.inner = inner
        self.size = size
        self.chunks = chunks
    }

    /// True when the file at `path` ends with a modelpress seek table.
    public static func isArchive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 17 && UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: bytes.count - 4, as: UInt32.self)) == ZstdArchive.seekableFooterMagic
    }

    /// The inner-file bytes in `range`, decoding only the chunks that overlap it.
    public func read(_ range: Range<Int>) throws -> [UInt8] {
        guard range.lowerBound >= 0, range.upperBound <= size else {
            throw ZstdArchiveError(file: path, tensor: nil, message: "range \(range) is outside the inner file of \(size) bytes")
        }
        var out = [UInt8](repeating: 0, count: range.count)
        let scratch = try ChunkScratch()
        let first = chunkIndex(containing: range.lowerBound)
        var c = first
        while c < chunks.count && chunks[c].offset < range.upperBound {
            let chunk = chunks[c]
            let decoded = try decode(chunk, scratch: scratch)
            let lo = max(range.lowerBound, chunk.offset), hi = min(range.upperBound, chunk.offset + chunk.length)
            out.withUnsafeMutableBytes { dst in
                decoded.withUnsafeBytes { src in
                    dst.baseAddress!.advanced(by: lo - range.lowerBound)
                        .copyMemory(from: src.baseAddress!.advanced(by: lo - chunk.offset), byteCount: hi - lo)
                }
            }
            c += 1
        }
        return out
    }

    /// Writes the whole inner file to `destination` (atomically), decoding on `threadCount` threads.
    /// `name(range)` names the tensor a failing range belongs to, for the error message.
    public func extract(to destination: String, threadCount: Int, name: (Range<Int>) -> String? = { _ in nil }) throws {
        let writer = try AtomicFileWriter(destination: destination)
        try ChunkScratch.windowed(count: chunks.count, threadCount: threadCount) { i, scratch in
            let chunk = chunks[i]
            do {
                try decode(chunk, codec: scratch.codec, planes: scratch.planes,
                           into: UnsafeMutableRawBufferPointer(rebasing: scratch.output[0..<chunk.length]))
            } catch let error as ZstdError {
                throw ZstdArchiveError(file: path, tensor: name(chunk.offset..<(chunk.offset + chunk.length)), message: error.message)
            }
        } emit: { i, scratch, _ in
            try writer.write(UnsafeRawBufferPointer(rebasing: scratch.output[0..<chunks[i].length]))
            for frame in chunks[i].frames { file.releaseResidentPages(frame) }   // streaming: the archive's pages go back too
        }
        try writer.commit()
    }

    private func chunkIndex(containing offset: Int) -> Int {
        var lo = 0, hi = chunks.count
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if chunks[mid].offset <= offset { lo = mid } else { hi = mid }
        }
        return lo
    }

    private func decode(_ chunk: Chunk, scratch: ChunkScratch) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: chunk.length) { buffer, count in
            try decode(chunk, codec: scratch.codec, planes: scratch.planes, into: UnsafeMutableRawBufferPointer(buffer))
            count = chunk.length
        }
    }

    /// Decodes `chunk` into `output` (exactly its length), using `planes` (at least its length) for byte planes.
    private func decode(_ chunk: Chunk, codec: ZstdCodec, planes: UnsafeMutableRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        let bytes = file.bytes
        if chunk.width == 0 {
            return try codec.decompress(UnsafeRawBufferPointer(rebasing: bytes[chunk.frames[0]]), into: output)
        }
        let n = chunk.length / chunk.width
        for (k, frame) in chunk.frames.enumerated() {
            try codec.decompress(UnsafeRawBufferPointer(rebasing: bytes[frame]), into: UnsafeMutableRawBufferPointer(rebasing: planes[(k * n)..<((k + 1) * n)]))
        }
        BytePlanes.merge(UnsafeRawBufferPointer(rebasing: planes[0..<chunk.length]), width: chunk.width, into: output)
    }
}

/// A zstd archive that cannot be read (exit 65), naming the tensor where one is affected.
public struct ZstdArchiveError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    public let file: String
    public let tensor: String?
    public let message: String

    public var description: String {
        tensor.map { "\(file): tensor '\($0)': \(message)" } ?? "\(file): \(message)"
    }
}
