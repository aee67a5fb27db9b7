import TensorCore

extension SparseLayout {
    /// The stored parts of `tensor` under `storage` (from `storage(for:pattern:)`, not `.dense`), named
    /// after `name`, in the order they are written (see `SparseLayout`).
    public static func encode(name: String, _ tensor: DenseTensor, storage: Storage) throws -> [(name: String, tensor: DenseTensor)] {
        guard let parts = parts(storage, shape: tensor.shape, dtype: tensor.dtype), let (rows, columns) = rowsAndColumns(tensor.shape) else {
            preconditionFailure("encode: \(storage) does not apply to \(tensor.dtype) \(tensor.shape)")
        }
        let size = tensor.dtype.bitsPerElement / 8
        var data: [Part.Kind: [UInt8]] = [.shape: SparseElements.int64Bytes(tensor.shape.dimensions)]
        tensor.storage.withUnsafeBytes { bytes in
            switch storage {
            case .dense:
                break
            case .bitmask(let count):
                let encoded = encodeBitmask(bytes, rows: rows, columns: columns, size: size, nonZeroCount: count)
                data[.compressed] = encoded.values
                data[.bitmask] = encoded.mask
                data[.rowOffsets] = SparseElements.int64Bytes(encoded.rowOffsets)
            case .nOfM(let n, let m):
                let encoded = encodeNOfM(bytes, rows: rows, columns: columns, size: size, kept: n, group: m)
                data[.compressed] = encoded.values
                data[.indices] = encoded.indices
            }
        }
        return try parts.map { part in
            (partName(name, part.kind), try DenseTensor(dtype: part.dtype, shape: part.shape, storage: ByteStorage(data[part.kind]!)))
        }
    }

    /// The non-zero values in row-major order, the packed row masks and where each row's values start.
    static func encodeBitmask(_ bytes: UnsafeRawBufferPointer, rows: Int, columns: Int, size: Int, nonZeroCount: Int)
        -> (values: [UInt8], mask: [UInt8], rowOffsets: [Int]) {
        let rowBytes = columns / 8 + (columns % 8 == 0 ? 0 : 1)
        var values = [UInt8](repeating: 0, count: nonZeroCount * size)
        var mask = [UInt8](repeating: 0, count: rows * rowBytes)
        var offsets = [Int](repeating: 0, count: rows)
        var k = 0
        values.withUnsafeMutableBytes { out in
            mask.withUnsafeMutableBufferPointer { mask in
                for r in 0..<rows {
                    offsets[r] = k
                    let base = r * columns
                    for c in 0..<columns where SparseElements.isNonZero(bytes, base + c, size: size) {
                        precondition(k < nonZeroCount, "encodeBitmask: more non-zeros than counted")
                        mask[r * rowBytes + (c >> 3)] |= 1 << UInt8(c & 7)
                        SparseElements.copy(bytes, base + c, to: out, k, size: size)
                        k += 1
                    }
                }
            }
        }
        precondition(k == nonZeroCount, "encodeBitmask: fewer non-zeros than counted")
        return (values, mask, offsets)
    }

    /// The kept values `[rows, columns·N/M]` and their packed positions `[rows, ⌈columns·N/M·b/8⌉]`.
    /// Every group must hold at most `kept` non-zeros.
    static func encodeNOfM(_ bytes: UnsafeRawBufferPointer, rows: Int, columns: Int, size: Int, kept n: Int, group m: Int)
        -> (values: [UInt8], indices: [UInt8]) {
        let keptPerRow = columns / m * n, b = indexBits(group: m)
        let rowBytes = (keptPerRow * b + 7) / 8
        var values = [UInt8](repeating: 0, count: rows * keptPerRow * size)
        var indices = [UInt8](repeating: 0, count: rows * rowBytes)
        values.withUnsafeMutableBytes { out in
            indices.withUnsafeMutableBufferPointer { indices in
                for r in 0..<rows {
                    var field = 0
                    for g in 0..<(columns / m) {
                        let start = r * columns + g * m
                        var positions = SparseElements.nonZeroBits(bytes, start: start, count: m, size: size)
                        precondition(positions.nonzeroBitCount <= n, "encodeNOfM: a group holds more than \(n) non-zeros")
                        // Fill the free kept slots with the lowest zero positions.
                        var p: UInt64 = 0
                        while positions.nonzeroBitCount < n {
                            positions |= 1 << p
                            p += 1
                        }
                        while positions != 0 {
                            let position = positions.trailingZeroBitCount
                            positions &= positions - 1
                            SparseElements.copy(bytes, start + position, to: out, r * keptPerRow + field, size: size)
                            let bit = b * field, o = r * rowBytes + (bit >> 3)
                            let shifted = UInt16(position) << UInt16(bit & 7)
                            indices[o] |= UInt8(truncatingIfNeeded: shifted)
                            if (bit & 7) + b > 8 { indices[o + 1] |= UInt8(shifted >> 8) }
                            field += 1
                        }
                    }
                }
            }
        }
        return (values, indices)
    }
}
