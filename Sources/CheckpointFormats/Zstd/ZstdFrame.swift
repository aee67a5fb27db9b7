/// One-shot zstd frames (one buffer in, one frame out), on top of `ZstdCodec`.
public enum ZstdFrame {
    /// Compresses `input` into one standard zstd frame with a content checksum.
    public static func compress(_ input: UnsafeRawBufferPointer, level: Int32 = 3) throws(ZstdError) -> [UInt8] {
        let codec = try ZstdCodec()
        var result: Result<Int, ZstdError> = .success(0)
        let frame = [UInt8](unsafeUninitializedCapacity: ZstdCodec.bound(input.count)) { buffer, count in
            result = Result { () throws(ZstdError) in try codec.compress(input, into: UnsafeMutableRawBufferPointer(buffer), profile: .level(level)) }
            count = (try? result.get()) ?? 0
        }
        _ = try result.get()
        return frame
    }

    /// Decompresses one frame whose header records its content size (at most `limit` bytes).
    public static func decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws(ZstdError) -> [UInt8] {
        guard let size = ZstdCodec.frameContentSize(input) else { throw ZstdError(message: "not a zstd frame, or one that does not record its size") }
        guard size <= limit else { throw ZstdError(message: "frame content of \(size) bytes exceeds the limit of \(limit)") }
        let codec = try ZstdCodec()
        var output = [UInt8](repeating: 0, count: size)
        var result: Result<Void, ZstdError> = .success(())
        output.withUnsafeMutableBytes { out in result = Result { () throws(ZstdError) in try codec.decompress(input, into: out) } }
        try result.get()
        return output
    }
}
