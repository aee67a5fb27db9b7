/// Bulk conversion between raw little-endian tensor bytes and `Float` for the float dtypes
/// (F16, BF16, F32, F64, F8_E4M3, F8_E5M2), with the rounding rules of `HalfPrecision` and `FP8Format`.
///
/// Byte buffers need no alignment. Callers pass buffers of the right size (a programmer error otherwise).
public enum FloatCodec {
    /// Decodes `dtype` bytes into `out` (`out.count` elements).
    public static func decode(_ bytes: UnsafeRawBufferPointer, as dtype: DType, into out: UnsafeMutableBufferPointer<Float>) {
        let n = out.count
        precondition(dtype.byteCount(elementCount: n) == bytes.count, "decode: byte count mismatch")
        guard n > 0, let src = bytes.baseAddress, let dst = out.baseAddress else { return }
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * 4)
        case .f64:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
        case .f16:
            for i in 0..<n { dst[i] = HalfPrecision.float(halfBits: src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
        case .bf16:
            var i = 0
            while i + 16 <= n {
                let h = src.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<UInt16>.self)
                let w = SIMD16<UInt32>(truncatingIfNeeded: h) &<< 16
                UnsafeMutableRawPointer(dst + i).storeBytes(of: w, as: SIMD16<UInt32>.self)
                i += 16
            }
            while i < n {
                dst[i] = HalfPrecision.float(bfloat16Bits: src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
                i += 1
            }
        case .f8E4M3, .f8E5M2:
            let format = dtype == .f8E4M3 ? FP8Format.e4m3 : FP8Format.e5m2
            let codes = src.assumingMemoryBound(to: UInt8.self)
            for i in 0..<n { dst[i] = format.decode(codes[i]) }
        default:
            preconditionFailure("decode: \(dtype) is not a float dtype")
        }
    }

    /// Encodes `values` as `dtype` into `out` (round to nearest even; FP8 saturates).
    public static func encode(_ values: UnsafeBufferPointer<Float>, as dtype: DType, into out: UnsafeMutableRawBufferPointer) {
        let n = values.count
        precondition(dtype.byteCount(elementCount: n) == out.count, "encode: byte count mismatch")
        guard n > 0, let src = values.baseAddress, let dst = out.baseAddress else { return }
        switch dtype {
        case .f32:
            dst.copyMemory(from: src, byteCount: n * 4)
        case .f64:
            for i in 0..<n { dst.storeBytes(of: Double(src[i]), toByteOffset: i * 8, as: Double.self) }
        case .f16:
            for i in 0..<n { dst.storeBytes(of: HalfPrecision.halfBits(src[i]), toByteOffset: i * 2, as: UInt16.self) }
        case .bf16:
            let raw = UnsafeRawPointer(src)
            var i = 0
            let nanThreshold = SIMD16<UInt32>(repeating: 0x7F80_0000)
            while i + 16 <= n {
                let b = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<UInt32>.self)
                var r = (b &+ 0x7FFF &+ ((b &>> 16) & 1)) &>> 16
                r.replace(with: (b &>> 16) | 0x40, where: (b & 0x7FFF_FFFF) .> nanThreshold)
                dst.storeBytes(of: SIMD16<UInt16>(truncatingIfNeeded: r), toByteOffset: i * 2, as: SIMD16<UInt16>.self)
                i += 16
            }
            while i < n {
                dst.storeBytes(of: HalfPrecision.bfloat16Bits(src[i]), toByteOffset: i * 2, as: UInt16.self)
                i += 1
            }
        case .f8E4M3, .f8E5M2:
            let format = dtype == .f8E4M3 ? FP8Format.e4m3 : FP8Format.e5m2
            for i in 0..<n { dst.storeBytes(of: format.encode(src[i]), toByteOffset: i, as: UInt8.self) }
        default:
            preconditionFailure("encode: \(dtype) is not a float dtype")
        }
    }

    /// Converts `count` elements from one float dtype to another, in chunks (no full-size `Float` copy).
    public static func convert(_ source: UnsafeRawBufferPointer, from: DType, to: DType, count: Int,
                               into out: UnsafeMutableRawBufferPointer) {
        let chunk = 8192
        withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk) { scratch in
            var start = 0
            while start < count {
                let n = min(chunk, count - start)
                let inBytes = from.byteCount(elementCount: n)!, inOffset = from.byteCount(elementCount: start)!
                let outBytes = to.byteCount(elementCount: n)!, outOffset = to.byteCount(elementCount: start)!
                let buffer = UnsafeMutableBufferPointer(rebasing: scratch[0..<n])
                decode(UnsafeRawBufferPointer(rebasing: source[inOffset..<(inOffset + inBytes)]), as: from, into: buffer)
                encode(UnsafeBufferPointer(buffer), as: to,
                       into: UnsafeMutableRawBufferPointer(rebasing: out[outOffset..<(outOffset + outBytes)]))
                start += n
            }
        }
    }
}
