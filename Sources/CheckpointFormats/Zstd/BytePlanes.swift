/// ZipNN-style byte grouping of float data: the bytes of `n` little-endian elements of `width`
/// bytes become `width` planes of `n` bytes (plane `k` holds byte `k` of every element).
///
/// Before splitting, each element is rotated left by one bit, which moves the sign bit to the
/// bottom and puts the whole exponent in the top byte (BF16, F32; 5 exponent bits + 3 mantissa
/// bits for F16). The top plane (the exponent) is then highly compressible and the others are
/// close to random. `merge` is the exact inverse: `merge(split(x)) == x` for any bytes.
public enum BytePlanes {
    /// Splits `input` (`input.count` a multiple of `width`, 2 or 4) into `output` (same size), plane by plane.
    public static func split(_ input: UnsafeRawBufferPointer, width: Int, into output: UnsafeMutableRawBufferPointer) {
        precondition((width == 2 || width == 4) && input.count % width == 0 && output.count == input.count, "BytePlanes.split: bad sizes")
        let n = input.count / width
        guard n > 0 else { return }
        let out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
        if width == 2 {
            var i = 0
            while i + 4 <= n {
                let w = input.loadUnaligned(fromByteOffset: 2 * i, as: UInt64.self)
                for k in 0..<4 {
                    let v = UInt16(truncatingIfNeeded: w >> UInt64(16 * k))
                    let r = v << 1 | v >> 15
                    out[i + k] = UInt8(truncatingIfNeeded: r)
                    out[n + i + k] = UInt8(truncatingIfNeeded: r >> 8)
                }
                i += 4
            }
            while i < n {
                let v = input.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                let r = v << 1 | v >> 15
                out[i] = UInt8(truncatingIfNeeded: r)
                out[n + i] = UInt8(truncatingIfNeeded: r >> 8)
                i += 1
            }
        } else {
            for i in 0..<n {
                let v = input.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)
                let r = v << 1 | v >> 31
                out[i] = UInt8(truncatingIfNeeded: r)
                out[n + i] = UInt8(truncatingIfNeeded: r >> 8)
                out[2 * n + i] = UInt8(truncatingIfNeeded: r >> 16)
                out[3 * n + i] = UInt8(truncatingIfNeeded: r >> 24)
            }
        }
    }

    /// The inverse of `split`.
    public static func merge(_ input: UnsafeRawBufferPointer, width: Int, into output: UnsafeMutableRawBufferPointer) {
        precondition((width == 2 || width == 4) && input.count % width == 0 && output.count == input.count, "BytePlanes.merge: bad sizes")
        let n = input.count / width
        guard n > 0 else { return }
        let planes = input.baseAddress!.assumingMemoryBound(to: UInt8.self)
        if width == 2 {
            for i in 0..<n {
                let r = UInt16(planes[i]) | UInt16(planes[n + i]) << 8
                output.storeBytes(of: r >> 1 | r << 15, toByteOffset: 2 * i, as: UInt16.self)
            }
        } else {
            for i in 0..<n {
                let r = UInt32(planes[i]) | UInt32(planes[n + i]) << 8 | UInt32(planes[2 * n + i]) << 16 | UInt32(planes[3 * n + i]) << 24
                output.storeBytes(of: r >> 1 | r << 31, toByteOffset: 4 * i, as: UInt32.self)
            }
        }
    }
}
