internal import CZstd

/// Reusable zstd compression and decompression contexts (one per thread; not shareable).
/// The only place in ModelPress that calls libzstd.
///
/// Every frame records its content size and a content checksum, so `zstd -t` verifies it and a
/// reader can size its buffer before decoding.
public final class ZstdCodec {
    /// How a frame is compressed.
    public enum Profile: Sendable, Equatable {
        /// A zstd compression level (1…22).
        case level(Int32)
        /// For a float exponent plane: 128 KiB blocks, almost no match search (`fast` strategy,
        /// minMatch 7, searchLog 1, hashLog 6), so nearly every byte is a Huffman-coded literal.
        /// On the benchmark's BF16 weights this plane compresses 3.05x, against 2.77x at level 1.
        case exponentPlane
        /// For the other planes of float data (mantissa bits, nearly random): zstd's fastest
        /// setting, which still finds the little structure there is and stores the rest raw.
        case mantissaPlane
    }

    private let compression: OpaquePointer
    private let decompression: OpaquePointer

    public init() throws(ZstdError) {
        guard let c = ZSTD_createCCtx() else { throw ZstdError(message: "cannot create a compression context") }
        guard let d = ZSTD_createDCtx() else { ZSTD_freeCCtx(c); throw ZstdError(message: "cannot create a decompression context") }
        compression = c
        decompression = d
    }

    deinit {
        ZSTD_freeCCtx(compression)
        ZSTD_freeDCtx(decompression)
    }

    /// The content size a frame's header records, or nil when `input` does not start with a frame
    /// header that records one.
    public static func frameContentSize(_ input: UnsafeRawBufferPointer) -> Int? {
        let size = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        guard size != ZSTD_CONTENTSIZE_ERROR, size != ZSTD_CONTENTSIZE_UNKNOWN, size <= UInt64(Int.max) else { return nil }
        return Int(size)
    }

    /// The largest frame `compress` can produce for `count` input bytes.
    public static func bound(_ count: Int) -> Int { ZSTD_compressBound(count) }

    /// Compresses `input` into one frame written at the start of `output` (at least
    /// `bound(input.count)` bytes); returns the frame's size.
    public func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, profile: Profile) throws(ZstdError) -> Int {
        try check(ZSTD_CCtx_reset(compression, ZSTD_reset_session_and_parameters))
        try check(ZSTD_CCtx_setParameter(compression, ZSTD_c_checksumFlag, 1))
        switch profile {
        case .level(let level):
            try check(ZSTD_CCtx_setParameter(compression, ZSTD_c_compressionLevel, level))
        case .mantissaPlane:
            try check(ZSTD_CCtx_setParameter(compression, ZSTD_c_compressionLevel, -1))
        case .exponentPlane:
            try check(ZSTD_CCtx_setParameter(compression, ZSTD_c_strategy, Int32(ZSTD_fast.rawValue)))
            try check(ZSTD_CCtx_setParameter(compression, ZSTD_c_windowLog, 17))
            try check(ZSTD_CCtx_setParameter(compression, ZSTD_c_hashLog, 6))
            try check(ZSTD_CCtx_setParameter(compression, ZSTD_c_searchLog, 1))
            try check(ZSTD_CCtx_setParameter(compression, ZSTD_c_minMatch, 7))
        }
        let written = ZSTD_compress2(compression, output.baseAddress, output.count, input.baseAddress, input.count)
        try check(written)
        return written
    }

    /// Decodes one frame (`input` holds exactly it) into `output`, which must be exactly its content size.
    public func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(ZstdError) {
        let size = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        guard size != ZSTD_CONTENTSIZE_ERROR else { throw ZstdError(message: "not a zstd frame") }
        guard size == UInt64(output.count) else {
            throw ZstdError(message: "frame holds \(size == ZSTD_CONTENTSIZE_UNKNOWN ? "an unknown number of" : "\(size)") bytes, expected \(output.count)")
        }
        let written = ZSTD_decompressDCtx(decompression, output.baseAddress, output.count, input.baseAddress, input.count)
        try check(written)
        guard written == output.count else { throw ZstdError(message: "frame decoded to \(written) bytes, expected \(output.count)") }
    }

    /// Decodes a sequence of frames (any standard `.zst` file, skippable frames ignored) in pieces of
    /// at most 4 MiB handed to `write`. Throws on a corrupt or truncated stream.
    public func decompressStream(_ input: UnsafeRawBufferPointer, write: (UnsafeRawBufferPointer) throws -> Void) throws {
        try check(ZSTD_DCtx_reset(decompression, ZSTD_reset_session_and_parameters))
        var buffer = [UInt8](repeating: 0, count: 4 << 20)
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var pending = 0   // the last return value: 0 when a frame ended exactly
        repeat {
            let produced: Int = try buffer.withUnsafeMutableBytes { out in
                var outBuffer = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
                pending = ZSTD_decompressStream(decompression, &outBuffer, &inBuffer)
                try check(pending)
                return outBuffer.pos
            }
            if produced > 0 { try buffer.withUnsafeBytes { try write(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) } }
            if produced == 0 && inBuffer.pos == inBuffer.size && pending != 0 { throw ZstdError(message: "truncated zstd stream") }
        } while inBuffer.pos < inBuffer.size || pending != 0
    }

    private func check(_ code: Int) throws(ZstdError) {
        if ZSTD_isError(code) != 0 { throw ZstdError(message: String(cString: ZSTD_getErrorName(code))) }
    }
}
