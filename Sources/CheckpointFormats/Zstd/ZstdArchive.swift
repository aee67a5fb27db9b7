import TensorCore
import Dispatch

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
        var disabled = Set<Int>()
        let codec = try ZstdCodec()
        let probe = ChunkScratch()
        for (s, segment) in segments.enumerated() where segment.width > 0 {
            guard let first = chunks.firstIndex(where: { $0.segment == s }) else { continue }
            let c = chunks[first]
            let input = UnsafeRawBufferPointer(rebasing: bytes[c.range])
            let grouped = try compressChunk(input, width: c.width, level: level, codec: codec, scratch: probe).reduce(0, +)
            let plain = try compressChunk(input, width: 0, level: level, codec: codec, scratch: probe).reduce(0, +)
            if grouped >= plain { disabled.insert(s) }
        }
        // Compress windows of chunks in parallel (each slot with its own reused buffers), write them in order.
        let plainSegments = disabled
        let workers = max(1, threadCount)
        let window = workers * 2
        let codecs = try (0..<workers).map { _ in try ZstdCodec() }
        let slots = (0..<window).map { _ in ChunkScratch() }
        var start = 0
        while start < chunks.count {
            let batch = Array(chunks[start..<min(start + window, chunks.count)])
            var results = [Result<[Int], Error>?](repeating: nil, count: batch.count)
            results.withUnsafeMutableBufferPointer { out in
                let box = UncheckedBox((out, codecs, bytes, slots))
                DispatchQueue.concurrentPerform(iterations: min(workers, batch.count)) { worker in
                    let (results, codecs, bytes, slots) = box.value
                    var i = worker
                    while i < batch.count {   // each slot is used by one worker only
                        let c = batch[i]
                        let width = plainSegments.contains(c.segment) ? 0 : c.width
                        results[i] = Result {
                            try compressChunk(UnsafeRawBufferPointer(rebasing: bytes[c.range]), width: width, level: level,
                                              codec: codecs[worker], scratch: slots[i])
                        }
                        i += workers
                    }
                }
            }
            for (i, (c, result)) in zip(batch, results).enumerated() {
                let sizes = try result!.get()
                let width = disabled.contains(c.segment) ? 0 : c.width
                stored.append((c.range.count, width))
                try writer.write(UnsafeRawBufferPointer(rebasing: slots[i].output[0..<sizes.reduce(0, +)]))
                for size in sizes { frameSizes.append((size, width == 0 ? c.range.count : c.range.count / width)) }
            }
            start += batch.count
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
    static func compressChunk(_ input: UnsafeRawBufferPointer, width: Int, level: Int32, codec: ZstdCodec,
                              scratch: ChunkScratch) throws -> [Int] {
        let output = scratch.output
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

/// Reused buffers for one chunk in flight: its byte planes and its compressed frames.
final class ChunkScratch: @unchecked Sendable {
    let planes: UnsafeMutableRawBufferPointer
    let output: UnsafeMutableRawBufferPointer

    init() {
        planes = .allocate(byteCount: ZstdArchive.chunkSize, alignment: 64)
        output = .allocate(byteCount: 4 * ZstdCodec.bound(ZstdArchive.chunkSize / 2), alignment: 64)
    }

    deinit {
        planes.deallocate()
        output.deallocate()
    }
}

/// Carries a value into `concurrentPerform` when the caller keeps accesses disjoint.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
