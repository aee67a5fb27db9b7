/// The codes of a tensor whose columns have their own widths (`QuantizedTensor.columnBits`), as the
/// mixed-width layouts store them: each row is a little-endian bitstream of its codes at their column
/// widths, least significant bit first, columns of width 0 taking no bits, padded with zero bits to
/// whole bytes.
///
/// Invariant: a row takes `rowByteCount = ⌈Σ_c b_c / 8⌉` bytes; the code of column c starts at bit
/// `o_c = Σ_{c' < c} b_c'` of its row, and bit i of the code is bit `(o_c + i) mod 8` of byte
/// `⌊(o_c + i) / 8⌋`. numpy: `np.unpackbits(row, bitorder="little")` gives the bits in stream order.
enum ColumnBitstream {
    /// Bytes per row: `⌈Σ_c b_c / 8⌉`.
    static func rowByteCount(columnBits: [UInt8]) -> Int {
        (columnBits.reduce(0) { $0 + Int($1) } + 7) / 8
    }

    /// Packs `rows` rows of codes (each below `2^b_c`) into `rows · rowByteCount` bytes.
    static func pack(_ codes: [UInt8], rows: Int, columnBits: [UInt8]) -> [UInt8] {
        let columns = columnBits.count, rowBytes = rowByteCount(columnBits: columnBits)
        precondition(codes.count == rows * columns, "pack: code count does not match the shape")
        var out = [UInt8](repeating: 0, count: rows * rowBytes)
        guard rowBytes > 0 else { return out }   // no code takes a bit (rows may be huge when there are no columns)
        out.withUnsafeMutableBufferPointer { out in
            for r in 0..<rows {
                var pending: UInt64 = 0, pendingBits = 0, o = r * rowBytes
                for c in 0..<columns where columnBits[c] > 0 {
                    pending |= UInt64(codes[r * columns + c]) << UInt64(pendingBits)
                    pendingBits += Int(columnBits[c])
                    while pendingBits >= 8 {
                        out[o] = UInt8(truncatingIfNeeded: pending)
                        o += 1
                        pending >>= 8
                        pendingBits -= 8
                    }
                }
                if pendingBits > 0 { out[o] = UInt8(truncatingIfNeeded: pending) }
            }
        }
        return out
    }

    /// The codes of `rows` packed rows (`bytes.count` must be `rows · rowByteCount`), or the first row
    /// whose padding bits are not zero.
    static func unpack(_ bytes: UnsafeRawBufferPointer, rows: Int, columnBits: [UInt8]) -> Result<[UInt8], DirtyPadding> {
        let columns = columnBits.count, rowBytes = rowByteCount(columnBits: columnBits)
        precondition(bytes.count == rows * rowBytes, "unpack: byte count does not match the shape")
        guard rowBytes > 0 else { return .success([UInt8](repeating: 0, count: rows * columns)) }
        var dirtyRow: Int?
        let codes = [UInt8](unsafeUninitializedCapacity: rows * columns) { codes, initialized in
            for r in 0..<rows {
                var pending: UInt64 = 0, pendingBits = 0, o = r * rowBytes
                for c in 0..<columns {
                    let b = Int(columnBits[c])
                    while pendingBits < b {
                        pending |= UInt64(bytes[o]) << UInt64(pendingBits)
                        o += 1
                        pendingBits += 8
                    }
                    codes[r * columns + c] = UInt8(truncatingIfNeeded: pending & ((1 << UInt64(b)) - 1))
                    pending >>= UInt64(b)
                    pendingBits -= b
                }
                if pending != 0 && dirtyRow == nil { dirtyRow = r }
            }
            initialized = rows * columns
        }
        if let dirtyRow { return .failure(DirtyPadding(row: dirtyRow)) }
        return .success(codes)
    }

    /// A row whose bits after its last code are not all zero.
    struct DirtyPadding: Error {
        let row: Int
    }
}
