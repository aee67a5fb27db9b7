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
            // 16 elements at a time (vector shifts and narrowing conversions).
            while i + 16 <= n {
                // Two elements per 32-bit lane: rotate each half, then pick bytes 0 and 2 (low plane), 1 and 3 (high).
                let v = input.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt32>.self)
                let r = ((v &<< 1) & 0xFFFE_FFFE) | ((v &>> 15) & 0x0001_0001)
                let low = (r & 0x0000_00FF) | ((r &>> 8) & 0x0000_FF00)
                let high = ((r &>> 8) & 0x0000_00FF) | ((r &>> 16) & 0x0000_FF00)
                output.storeBytes(of: SIMD8<UInt16>(truncatingIfNeeded: low), toByteOffset: i, as: SIMD8<UInt16>.self)
                output.storeBytes(of: SIMD8<UInt16>(truncatingIfNeeded: high), toByteOffset: n + i, as: SIMD8<UInt16>.self)
                i += 16
            }
            while i < n {
                let v = input.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                let r = v << 1 | v >> 15
                out[i] = UInt8(truncatingIfNeeded: r)
                out[n + i] = UInt8(truncatingIfNeeded: r >> 8)
                i += 1
            }
        } else {
            // 16 elements at a time (vector shifts and narrowing conversions).
            while i + 16 <= n {
                let v = input.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<UInt32>.self)
                let r = (v &<< 1) | (v &>> 31)
                output.storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: r), toByteOffset: i, as: SIMD16<UInt8>.self)
                output.storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: r &>> 8), toByteOffset: n + i, as: SIMD16<UInt8>.self)
                output.storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: r &>> 16), toByteOffset: 2 * n + i, as: SIMD16<UInt8>.self)
                output.storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: r &>> 24), toByteOffset: 3 * n + i, as: SIMD16<UInt8>.self)
                i += 16
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
            while i + 16 <= n {
                // Two elements per 32-bit lane: interleave the planes' byte pairs, then rotate each half right.
                let low = SIMD8<UInt32>(truncatingIfNeeded: input.loadUnaligned(fromByteOffset: i, as: SIMD8<UInt16>.self))
                let high = SIMD8<UInt32>(truncatingIfNeeded: input.loadUnaligned(fromByteOffset: n + i, as: SIMD8<UInt16>.self))
                let r = (low & 0x00FF) | ((low & 0xFF00) &<< 8) | ((high & 0x00FF) &<< 8) | ((high & 0xFF00) &<< 16)
                let v = ((r &>> 1) & 0x7FFF_7FFF) | ((r &<< 15) & 0x8000_8000)
                output.storeBytes(of: v, toByteOffset: 2 * i, as: SIMD8<UInt32>.self)
                i += 16
            }
            while i < n {
                let r = UInt16(planes[i]) | UInt16(planes[n + i]) << 8
                output.storeBytes(of: r >> 1 | r << 15, toByteOffset: 2 * i, as: UInt16.self)
                i += 1
            }
        } else {
            while i + 16 <= n {
                let p0 = SIMD16<UInt32>(truncatingIfNeeded: input.loadUnaligned(fromByteOffset: i, as: SIMD16<UInt8>.self))
                let p1 = SIMD16<UInt32>(truncatingIfNeeded: input.loadUnaligned(fromByteOffset: n + i, as: SIMD16<UInt8>.self))
                let p2 = SIMD16<UInt32>(truncatingIfNeeded: input.loadUnaligned(fromByteOffset: 2 * n + i, as: SIMD16<UInt8>.self))
                let p3 = SIMD16<UInt32>(truncatingIfNeeded: input.loadUnaligned(fromByteOffset: 3 * n + i, as: SIMD16<UInt8>.self))
                let r = p0 | (p1 &<< 8) | (p2 &<< 16) | (p3 &<< 24)
                output.storeBytes(of: (r &>> 1) | (r &<< 31), toByteOffset: 4 * i, as: SIMD16<UInt32>.self)
                i += 16
            }
            while i < n {
                let r = UInt32(planes[i]) | UInt32(planes[n + i]) << 8 | UInt32(planes[2 * n + i]) << 16 | UInt32(planes[3 * n + i]) << 24
                output.storeBytes(of: r >> 1 | r << 31, toByteOffset: 4 * i, as: UInt32.self)
                i += 1
            }
        }
    }
}
