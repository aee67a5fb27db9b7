internal import CZstd

/// One-shot zstd frames. The only place in ModelPress that calls libzstd.
public enum ZstdFrame {
    /// Compresses `input` into one standard zstd frame with a content checksum.
    /// The corresponding C function is `ZSTD_compress2`.
    public static func compress(_ input: UnsafeRawBufferPointer, level: Int32 = 3) throws(ZstdError) -> [UInt8] {
        guard let context = ZSTD_createCCtx() else { throw ZstdError(message: "cannot create a compression context") }
        defer { ZSTD_freeCCtx(context) }
        try check(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level))
        try check(ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1))
        let bound = ZSTD_compressBound(input.count)
        var output = [UInt8](repeating: 0, count: bound)
        let written = output.withUnsafeMutableBytes { out in
            ZSTD_compress2(context, out.baseAddress, bound, input.baseAddress, input.count)
        }
        try check(written)
        output.removeSubrange(written...)
        return output
    }

    /// Decompresses one frame whose header records its content size (at most `limit` bytes).
    /// The corresponding C function is `ZSTD_decompressDCtx`.
    public static func decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws(ZstdError) -> [UInt8] {
        let size = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        guard size != ZSTD_CONTENTSIZE_ERROR else { throw ZstdError(message: "not a zstd frame") }
        guard size != ZSTD_CONTENTSIZE_UNKNOWN else { throw ZstdError(message: "frame does not record its size") }
        guard size <= UInt64(limit) else { throw ZstdError(message: "frame content of \(size) bytes exceeds the limit of \(limit)") }
        guard let context = ZSTD_createDCtx() else { throw ZstdError(message: "cannot create a decompression context") }
        defer { ZSTD_freeDCtx(context) }
        var output = [UInt8](repeating: 0, count: Int(size))
        let written = output.withUnsafeMutableBytes { out in
            ZSTD_decompressDCtx(context, out.baseAddress, out.count, input.baseAddress, input.count)
        }
        try check(written)
        guard written == Int(size) else { throw ZstdError(message: "frame decoded to \(written) bytes, expected \(size)") }
        return output
    }

    private static func check(_ code: Int) throws(ZstdError) {
        if ZSTD_isError(code) != 0 { throw ZstdError(message: String(cString: ZSTD_getErrorName(code))) }
    }
}
