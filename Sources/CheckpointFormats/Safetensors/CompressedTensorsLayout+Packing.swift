import TensorCore

/// Packing of integer codes into I32 words (compressed-tensors `pack-quantized`).
///
/// Each row of `columns` codes (each below `2^bits`) becomes `⌈columns / (32/bits)⌉` words; code `c`
/// of a row sits at bits `bits·(c mod perWord)` of word `c / perWord`, and the last word of a row is
/// zero-padded. Words are stored little-endian. `packWords` is the definition; `pack` writes the same
/// bytes straight into the tensor storage, 16 codes at a time for 8, 4 and 2 bits (whole bytes; the
/// lane shuffles assume a little-endian host, as the F32 readers do).
extension CompressedTensorsLayout {
    /// Packs unsigned codes `[rows, columns]` into I32 `[rows, ⌈columns / (32/bits)⌉]`.
    ///
    /// 8-bit codes whose rows fill whole words are already the packed bytes, so they are shared, not copied.
    static func pack(_ codes: [UInt8], rows: Int, columns: Int, bits: Int) throws -> DenseTensor {
        precondition(codes.count == rows * columns, "pack: code count does not match the shape")
        let perWord = 32 / bits
        let wordsPerRow = (columns + perWord - 1) / perWord
        let shape = Shape([rows, rows == 0 ? 0 : wordsPerRow])
        if bits == 8, columns % 4 == 0 {
            return try DenseTensor(dtype: .i32, shape: shape, storage: ByteStorage(codes))
        }
        let storage = ByteStorage(count: rows * wordsPerRow * 4) { out in
            codes.withUnsafeBufferPointer { codes in
                guard let source = codes.baseAddress, let target = out.baseAddress else { return }
                for r in 0..<rows {
                    packRow(source + r * columns, columns: columns, bits: bits, into: target + r * wordsPerRow * 4)
                }
            }
        }
        return try DenseTensor(dtype: .i32, shape: shape, storage: storage)
    }

    /// Packs codes given widened to `UInt32` (each below `2^bits`): narrowed to bytes first (a loop the
    /// compiler vectorizes), then packed as byte codes.
    static func pack(_ codes: [UInt32], rows: Int, columns: Int, bits: Int) throws -> DenseTensor {
        let bytes = [UInt8](unsafeUninitializedCapacity: codes.count) { bytes, initialized in
            codes.withUnsafeBufferPointer { codes in
                for i in codes.indices { bytes[i] = UInt8(truncatingIfNeeded: codes[i]) }
            }
            initialized = codes.count
        }
        return try pack(bytes, rows: rows, columns: columns, bits: bits)
    }

    /// Writes the little-endian words of one row of byte codes to `target`.
    @inline(__always)
    static func packRow(_ codes: UnsafePointer<UInt8>, columns: Int, bits: Int, into target: UnsafeMutableRawPointer) {
        let perWord = 32 / bits
        var c = 0
        // 8, 4 and 2 bits: 16 codes fill 16, 8 or 4 whole bytes; neighbouring codes are merged by
        // shifts within 16- or 32-bit lanes (little-endian lanes).
        if bits == 8 || bits == 4 || bits == 2 {
            while c + 16 <= columns {
                let v = UnsafeRawPointer(codes + c).loadUnaligned(as: SIMD16<UInt8>.self)
                switch bits {
                case 8:
                    target.storeBytes(of: v, toByteOffset: c, as: SIMD16<UInt8>.self)
                case 4:
                    let pairs = unsafeBitCast(v, to: SIMD8<UInt16>.self)          // c0 | c1 << 8
                    target.storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: pairs | (pairs &>> 4)), toByteOffset: c / 2, as: SIMD8<UInt8>.self)
                default:
                    let quads = unsafeBitCast(v, to: SIMD4<UInt32>.self)          // c0 | c1 << 8 | c2 << 16 | c3 << 24
                    let halves = (quads | (quads &>> 6)) & 0x000F_000F             // c0 | c1 << 2, and c2 | c3 << 2 at bit 16
                    target.storeBytes(of: SIMD4<UInt8>(truncatingIfNeeded: halves | (halves &>> 12)), toByteOffset: c / 4, as: SIMD4<UInt8>.self)
                }
                c += 16
            }
        }
        // The rest of the row one word at a time (c is a multiple of perWord here).
        while c < columns {
            let n = min(perWord, columns - c)
            var word: UInt32 = 0
            for k in 0..<n { word |= UInt32(codes[c + k]) << UInt32(bits * k) }
            target.storeBytes(of: word.littleEndian, toByteOffset: (c / perWord) * 4, as: UInt32.self)
            c += n
        }
    }

    /// The packed words, one code at a time (the reference for `pack`).
    static func packWords(_ codes: [UInt32], rows: Int, columns: Int, bits: Int) -> [UInt32] {
        let perWord = 32 / bits
        let wordsPerRow = (columns + perWord - 1) / perWord
        var words = [UInt32](repeating: 0, count: rows * wordsPerRow)
        for r in 0..<rows {
            for c in 0..<columns {
                words[r * wordsPerRow + c / perWord] |= codes[r * columns + c] << UInt32(bits * (c % perWord))
            }
        }
        return words
    }

    /// `unpackWords` straight from the little-endian words of `packed` (an I32 tensor of
    /// `rows · ⌈columns / (32/bits)⌉` elements) into one byte per code, without a copy of the words.
    static func unpackCodes(_ packed: DenseTensor, rows: Int, columns: Int, bits: Int) -> [UInt8] {
        let perWord = 32 / bits
        let wordsPerRow = packed.elementCount / max(rows, 1)
        let mask = UInt32((1 << bits) - 1)
        return packed.storage.withUnsafeBytes { raw in
            [UInt8](unsafeUninitializedCapacity: rows * columns) { codes, count in
                for r in 0..<rows {
                    for c in 0..<columns {
                        let k = r * wordsPerRow + c / perWord
                        let word = c / perWord < wordsPerRow ? UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * k, as: UInt32.self)) : 0
                        codes[r * columns + c] = UInt8(truncatingIfNeeded: (word >> UInt32(bits * (c % perWord))) & mask)
                    }
                }
                count = rows * columns
            }
        }
    }

    static func unpackWords(_ words: [UInt32], rows: Int, columns: Int, bits: Int) -> [UInt32] {
        let perWord = 32 / bits
        let wordsPerRow = words.count / max(rows, 1)
        let mask = UInt32((1 << bits) - 1)
        var codes = [UInt32](repeating: 0, count: rows * columns)
        for r in 0..<rows {
            for c in 0..<columns where c / perWord < wordsPerRow {
                codes[r * columns + c] = (words[r * wordsPerRow + c / perWord] >> UInt32(bits * (c % perWord))) & mask
            }
        }
        return codes
    }
}
