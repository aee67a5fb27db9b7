import TensorCore

/// A checkpoint file (safetensors or GGUF, the "inner" file) stored as independent zstd frames,
/// with an index for random access. Every frame is a standard zstd frame (or a skippable frame),
/// so `zstd -t` accepts the file.
///
/// Layout:
/// - content frames, in inner-file order. The inner file is cut into chunks (at most `chunkSize`
///   bytes, never straddling a tensor boundary). A *plain* chunk is one frame of its bytes. A
///   *grouped* chunk (F32 / F16 / BF16 tensor data) is `width` frames, the byte planes of
///   `BytePlanes.split`; its top (exponent) plane uses `ZstdCodec.Profile.exponentPlane`.
/// - the index: a skippable frame (magic `0x184D2A5D`) holding JSON
///   `{"format":"modelpress-zstd","version":1,"inner":"safetensors"|"gguf","size":N,
///   "chunks":[[length,width],...]}` (width 0 = plain; chunks are contiguous from offset 0);
/// - the seek table of the zstd seekable format (a skippable frame, magic `0x184D2A5E`): one
///   `(compressed size, decompressed size)` pair of u32 per frame, index frame included (0 bytes
///   decompressed), then the frame count (u32), a descriptor byte (0) and `0x8F92EAB1`.
/// With only plain chunks (`zstd_layout=plain`), `zstd -d` yields the inner file byte for byte.
public enum ZstdArchive {
    static let indexMagic: UInt32 = 0x184D_2A5D
    static let seekTableMagic: UInt32 = 0x184D_2A5E
    static let seekableFooterMagic: UInt32 = 0x8F92_EAB1
    /// The largest chunk of inner-file bytes in one frame group.
    public static let chunkSize = 4 << 20

    /// A range of the inner file and how to store it: `width` 0 plain, 2 or 4 grouped by bytes.
    public struct Segment: Sendable, Equatable {
        public let range: Range<Int>
        public let width: Int
        public init(range: Range<Int>, width: Int) {
            self.range = range
            self.width = width
        }
    }

    /// Compresses the inner file `source` (whose float tensor ranges are `segments`; gaps are plain)
    /// into `destination` with zstd `level`, on `threadCount` threads. A grouped segment whose first
    /// chunk does not come out smaller grouped than plain is stored plain. The output bytes do not
    /// depend on the thread count.
    public static func write(source: MappedFile, inner: String, segments: [Segment], level: Int32, threadCount: Int,
                             to destination: String) throws {
        let chunks = plan(size: source.byteCount, segments: segments)
        let writer = try AtomicFileWriter(destination: destination)
        var frameSizes: [(compressed: Int, decompressed: Int)] = []
        var stored: [(length: Int, width: Int)] = []
        let bytes = source.bytes
        // Decide per segment on its first chunk: grouped only where it is smaller.
        var plainSegments = Set<Int>()
        let probe = try ChunkScratch()
        for (s, segment) in segments.enumerated() where segment.width > 0 {
            guard let c = chunks.first(where: { $0.segment == s }) else { continue }
            let input = UnsafeRawBufferPointer(rebasing: bytes[c.range])
            let grouped = try compressChunk(input, width: c.width, level: level, scratch: probe).reduce(0, +)
            let plain = try compressChunk(input, width: 0, level: level, scratch: probe).reduce(0, +)
            if grouped >= plain { plainSegments.insert(s) }
            source.releaseResidentPages(c.range)
        }
        let widths = chunks.map { plainSegments.contains($0.segment) ? 0 : $0.width }
        try ChunkScratch.windowed(count: chunks.count, threadCount: threadCount) { i, scratch in
            try compressChunk(UnsafeRawBufferPointer(rebasing: bytes[chunks[i].range]), width: widths[i], level: level, scratch: scratch)
        } emit: { i, scratch, sizes in
            let length = chunks[i].range.count, width = widths[i]
            stored.append((length, width))
            try writer.write(UnsafeRawBufferPointer(rebasing: scratch.output[0..<sizes.reduce(0, +)]))
            source.releaseResidentPages(chunks[i].range)   // streaming: the inner file's pages go back chunk by chunk
            for size in sizes { frameSizes.append((size, width == 0 ? length : length / width)) }
        }
        // Index, then seek table.
        let json = JSONWriter.compact(.object([
            ("format", .string("modelpress-zstd")), ("version", .integer(1)), ("inner", .string(inner)),
            ("size", .integer(source.byteCount)),
            ("chunks", .array(stored.map { .array([.integer($0.length), .integer($0.width)]) })),
        ]))
        var index = le32(indexMagic) + le32(UInt32(json.utf8.count))
        index += Array(json.utf8)
        try writer.write(index)
        frameSizes.append((index.count, 0))
        var table = le32(seekTableMagic) + le32(UInt32(frameSizes.count * 8 + 9))
        for f in frameSizes {
            guard f.compressed <= Int(UInt32.max), f.decompressed <= Int(UInt32.max) else { throw ZstdError(message: "frame too large for the seek table") }
            table += le32(UInt32(f.compressed)) + le32(UInt32(f.decompressed))
        }
        table += le32(UInt32(frameSizes.count)) + [0] + le32(seekableFooterMagic)
        try writer.write(table)
        try writer.commit()
    }

    struct PlannedChunk: Sendable {
        let range: Range<Int>
        let width: Int
        let segment: Int   // index of the grouped segment it belongs to, or -1
    }

    /// Cuts `[0, size)` into chunks: grouped segments in chunks of whole elements, gaps plain.
    static func plan(size: Int, segments: [Segment]) -> [PlannedChunk] {
        var chunks: [PlannedChunk] = []
        var position = 0
        func plain(upTo end: Int) {
            while position < end {
                let next = min(end, position + chunkSize)
                chunks.append(PlannedChunk(range: position..<next, width: 0, segment: -1))
                position = next
            }
        }
        for (s, segment) in segments.enumerated().sorted(by: { $0.element.range.lowerBound < $1.element.range.lowerBound }) {
            guard segment.range.lowerBound >= position, segment.range.upperBound <= size else { continue }
            plain(upTo: segment.range.lowerBound)
            let width = segment.width
            guard width == 2 || width == 4, segment.range.count % width == 0 else { plain(upTo: segment.range.upperBound); continue }
            let step = chunkSize / width * width
            while position < segment.range.upperBound {
                let next = min(segment.range.upperBound, position + step)
                chunks.append(PlannedChunk(range: position..<next, width: width, segment: s))
                position = next
            }
        }
        plain(upTo: size)
        return chunks
    }

    /// Compresses one chunk into `scratch.output` (frames back to back); returns the frame sizes.
    static func compressChunk(_ input: UnsafeRawBufferPointer, width: Int, level: Int32, scratch: ChunkScratch) throws -> [Int] {
        let output = scratch.output, codec = scratch.codec
        guard width > 0 else { return [try codec.compress(input, into: output, profile: .level(level))] }
        BytePlanes.split(input, width: width, into: UnsafeMutableRawBufferPointer(rebasing: scratch.planes[0..<input.count]))
        let n = input.count / width
        var sizes: [Int] = []
        var position = 0
        for k in 0..<width {
            let plane = UnsafeRawBufferPointer(rebasing: scratch.planes[(k * n)..<((k + 1) * n)])
            let size = try codec.compress(plane, into: UnsafeMutableRawBufferPointer(rebasing: output[position...]),
                                          profile: k == width - 1 ? .exponentPlane : .mantissaPlane)
            sizes.append(size)
            position += size
        }
        return sizes
    }

    static func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
}

/// Reused buffers for one chunk in flight: its byte planes, its compressed frames (or decoded
/// bytes), and a zstd context.
final class ChunkScratch {
    let planes: UnsafeMutableRawBufferPointer
    let output: UnsafeMutableRawBufferPointer
    let codec: ZstdCodec

    init() throws(ZstdError) {
        codec = try ZstdCodec()
        planes = .allocate(byteCount: ZstdArchive.chunkSize, alignment: 64)
        output = .allocate(byteCount: 4 * ZstdCodec.bound(ZstdArchive.chunkSize / 2), alignment: 64)
    }

    deinit {
        planes.deallocate()
        output.deallocate()
    }

    /// Runs `work(i, scratch)` for items `0..<count` in windows of `2·threadCount`, the items of a
    /// window in parallel, each with its own scratch; then `emit(i, scratch, result)` for them in
    /// order (the first error, in item order, is thrown). Results do not depend on the thread count.
    static func windowed<T>(count: Int, threadCount: Int, work: (Int, ChunkScratch) throws -> T,
                            emit: (Int, ChunkScratch, T) throws -> Void) throws {
        let window = 2 * max(1, threadCount)
        let slots = try (0..<min(window, max(count, 1))).map { _ in try ChunkScratch() }
        var start = 0
        while start < count {
            let batch = min(window, count - start)
            var results = [Result<T, Error>?](repeating: nil, count: batch)
            results.withUnsafeMutableBufferPointer { results in
                ParallelLoop.forEachRange(count: batch, threadCount: threadCount) { range in
                    for k in range { results[k] = Result { try work(start + k, slots[k]) } }   // slot k: item k only
                }
            }
            for k in 0..<batch { try emit(start + k, slots[k], try results[k]!.get()) }
            start += batch
        }
    }
}
