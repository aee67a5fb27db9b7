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
        var i = 0
        if width == 2 {
            // 8 elements at a time: two 8-byte loads, one 8-byte store per plane.
            while i + 8 <= n {
                var low: UInt64 = 0, high: UInt64 = 0
                for half in 0..<2 {
                    let w = input.loadUnaligned(fromByteOffset: 2 * i + 8 * half, as: UInt64.self)
                    for k in 0..<4 {
                        let v = UInt16(truncatingIfNeeded: w >> UInt64(16 * k))
                        let r = UInt64(v << 1 | v >> 15)
                        let shift = UInt64(8 * (4 * half + k))
                        low |= (r & 0xFF) << shift
                        high |= (r >> 8) << shift
                    }
                }
                output.storeBytes(of: low, toByteOffset: i, as: UInt64.self)
                output.storeBytes(of: high, toByteOffset: n + i, as: UInt64.self)
                i += 8
            }
            while i < n {
                let v = input.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                let r = v << 1 | v >> 15
                out[i] = UInt8(truncatingIfNeeded: r)
                out[n + i] = UInt8(truncatingIfNeeded: r >> 8)
                i += 1
            }
        } else {
            // 8 elements at a time: four 8-byte loads, one 8-byte store per plane.
            while i + 8 <= n {
                var p0: UInt64 = 0, p1: UInt64 = 0, p2: UInt64 = 0, p3: UInt64 = 0
                for pair in 0..<4 {
                    let w = input.loadUnaligned(fromByteOffset: 4 * i + 8 * pair, as: UInt64.self)
                    for k in 0..<2 {
                        let v = UInt32(truncatingIfNeeded: w >> UInt64(32 * k))
                        let r = UInt64(v << 1 | v >> 31)
                        let shift = UInt64(8 * (2 * pair + k))
                        p0 |= (r & 0xFF) << shift
                        p1 |= ((r >> 8) & 0xFF) << shift
                        p2 |= ((r >> 16) & 0xFF) << shift
                        p3 |= (r >> 24) << shift
                    }
                }
                output.storeBytes(of: p0, toByteOffset: i, as: UInt64.self)
                output.storeBytes(of: p1, toByteOffset: n + i, as: UInt64.self)
                output.storeBytes(of: p2, toByteOffset: 2 * n + i, as: UInt64.self)
                output.storeBytes(of: p3, toByteOffset: 3 * n + i, as: UInt64.self)
                i += 8
            }
            while i < n {
                let v = input.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)
                let r = v << 1 | v >> 31
                out[i] = UInt8(truncatingIfNeeded: r)
                out[n + i] = UInt8(truncatingIfNeeded: r >> 8)
                out[2 * n + i] = UInt8(truncatingIfNeeded: r >> 16)
                out[3 * n + i] = UInt8(truncatingIfNeeded: r >> 24)
                i += 1
            }
        }
    }

    /// The inverse of `split`.
    public static func merge(_ input: UnsafeRawBufferPointer, width: Int, into output: UnsafeMutableRawBufferPointer) {
        precondition((width == 2 || width == 4) && input.count % width == 0 && output.count == input.count, "BytePlanes.merge: bad sizes")
        let n = input.count / width
        guard n > 0 else { return }
        let planes = input.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var i = 0
        if width == 2 {
            while i + 8 <= n {
                let low = input.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                let high = input.loadUnaligned(fromByteOffset: n + i, as: UInt64.self)
                for half in 0..<2 {
                    var w: UInt64 = 0
                    for k in 0..<4 {
                        let shift = UInt64(8 * (4 * half + k))
                        let r = UInt16((low >> shift) & 0xFF) | UInt16((high >> shift) & 0xFF) << 8
                        w |= UInt64(r >> 1 | r << 15) << UInt64(16 * k)
                    }
                    output.storeBytes(of: w, toByteOffset: 2 * i + 8 * half, as: UInt64.self)
                }
                i += 8
            }
            while i < n {
                let r = UInt16(planes[i]) | UInt16(planes[n + i]) << 8
                output.storeBytes(of: r >> 1 | r << 15, toByteOffset: 2 * i, as: UInt16.self)
                i += 1
            }
        } else {
            while i + 8 <= n {
                let p0 = input.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                let p1 = input.loadUnaligned(fromByteOffset: n + i, as: UInt64.self)
                let p2 = input.loadUnaligned(fromByteOffset: 2 * n + i, as: UInt64.self)
                let p3 = input.loadUnaligned(fromByteOffset: 3 * n + i, as: UInt64.self)
                for pair in 0..<4 {
                    var w: UInt64 = 0
                    for k in 0..<2 {
                        let shift = UInt64(8 * (2 * pair + k))
                        let r = UInt32((p0 >> shift) & 0xFF) | UInt32((p1 >> shift) & 0xFF) << 8
                            | UInt32((p2 >> shift) & 0xFF) << 16 | UInt32((p3 >> shift) & 0xFF) << 24
                        w |= UInt64(r >> 1 | r << 31) << UInt64(32 * k)
                    }
                    output.storeBytes(of: w, toByteOffset: 4 * i + 8 * pair, as: UInt64.self)
                }
                i += 8
            }
            while i < n {
                let r = UInt32(planes[i]) | UInt32(planes[n + i]) << 8 | UInt32(planes[2 * n + i]) << 16 | UInt32(planes[3 * n + i]) << 24
                output.storeBytes(of: r >> 1 | r << 31, toByteOffset: 4 * i, as: UInt32.self)
                i += 1
            }
        }
    }
}
