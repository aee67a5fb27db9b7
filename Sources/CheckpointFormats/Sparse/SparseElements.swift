/// Element-level access to raw tensor bytes for the sparse layouts, for elements of 1, 2, 4 or 8
/// bytes (every whole-byte dtype).
///
/// An element is non-zero when any of its bytes is (`-0.0` and NaN count as non-zero), so storing the
/// non-zero elements and zero-filling the rest gives back the exact bytes.
enum SparseElements {
    /// True when element `i` (of `size` bytes) of `bytes` is not all zero bytes.
    @inline(__always)
    static func isNonZero(_ bytes: UnsafeRawBufferPointer, _ i: Int, size: Int) -> Bool {
        switch size {
        case 1: bytes[i] != 0
        case 2: bytes.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self) != 0
        case 4: bytes.loadUnaligned(fromByteOffset: 4 &* i, as: UInt32.self) != 0
        default: bytes.loadUnaligned(fromByteOffset: 8 &* i, as: UInt64.self) != 0
        }
    }

    /// Copies element `from` of `source` to element `to` of `target` (both of `size`-byte elements).
    @inline(__always)
    static func copy(_ source: UnsafeRawBufferPointer, _ from: Int, to target: UnsafeMutableRawBufferPointer, _ to: Int, size: Int) {
        switch size {
        case 1: target[to] = source[from]
        case 2: target.storeBytes(of: source.loadUnaligned(fromByteOffset: 2 &* from, as: UInt16.self), toByteOffset: 2 &* to, as: UInt16.self)
        case 4: target.storeBytes(of: source.loadUnaligned(fromByteOffset: 4 &* from, as: UInt32.self), toByteOffset: 4 &* to, as: UInt32.self)
        default: target.storeBytes(of: source.loadUnaligned(fromByteOffset: 8 &* from, as: UInt64.self), toByteOffset: 8 &* to, as: UInt64.self)
        }
    }

    /// The non-zero positions of elements `start ..< start + count` (count ≤ 64) as bits of a word
    /// (bit p for element `start + p`).
    @inline(__always)
    static func nonZeroBits(_ bytes: UnsafeRawBufferPointer, start: Int, count: Int, size: Int) -> UInt64 {
        var bits: UInt64 = 0
        for p in 0..<count where isNonZero(bytes, start &+ p, size: size) { bits |= 1 << UInt64(p) }
        return bits
    }

    /// Little-endian I64 values, as `Int`.
    static func int64s(_ bytes: UnsafeRawBufferPointer, count: Int) -> [Int] {
        (0..<count).map { Int(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) }
    }

    /// `values` as little-endian I64 bytes.
    static func int64Bytes(_ values: [Int]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 8 * values.count)
        out.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() { raw.storeBytes(of: Int64(v).littleEndian, toByteOffset: 8 * i, as: Int64.self) }
        }
        return out
    }
}
