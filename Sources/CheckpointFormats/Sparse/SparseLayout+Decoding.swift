import TensorCore

extension SparseLayout {
    /// Why stored parts do not fit together; `collapse` adds the file and the tensor.
    struct Problem: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// A stored part handed to the decoders: its full name and tensor.
    typealias StoredPart = (name: String, tensor: DenseTensor)

    /// The dense shape held by a `.shape` part: I64 `[k]` (or `[k, 1]`, as some compressed-tensors
    /// versions write it) with k ≥ 1, non-negative dimensions and an element count that fits in `Int`.
    static func denseShape(_ part: StoredPart) throws(Problem) -> Shape {
        let t = part.tensor
        guard t.dtype == .i64 else { throw Problem("'\(part.name)' is \(t.dtype), expected I64") }
        let dims = t.shape.dimensions
        guard dims.count == 1 || (dims.count == 2 && dims[1] == 1) else { throw Problem("'\(part.name)' has shape \(t.shape), expected [rank]") }
        guard t.elementCount >= 1 else { throw Problem("'\(part.name)' holds no dimensions (a scalar is never stored sparse)") }
        let values = t.storage.withUnsafeBytes { SparseElements.int64s($0, count: t.elementCount) }
        if let d = values.first(where: { $0 < 0 }) { throw Problem("'\(part.name)' holds the negative dimension \(d)") }
        guard let shape = try? Shape(validating: values) else {
            throw Problem("element count overflow: '\(part.name)' holds [\(values.map(String.init).joined(separator: ", "))]")
        }
        return shape
    }

    /// The parts of `storage` for `shape` and the values' dtype, or the reason there are none.
    static func expectedParts(_ storage: Storage, shape: Shape, values: StoredPart) throws(Problem) -> [Part.Kind: Part] {
        let dtype = values.tensor.dtype
        guard dtype.bitsPerElement % 8 == 0 else { throw Problem("'\(values.name)' is \(dtype), a sub-byte dtype") }
        guard let parts = parts(storage, shape: shape, dtype: dtype), dtype.byteCount(elementCount: shape.elementCount) != nil else {
            throw Problem("element count overflow: \(dtype) \(shape) does not fit in memory sizes")
        }
        return Dictionary(uniqueKeysWithValues: parts.map { ($0.kind, $0) })
    }

    /// `part` has `dtype` and one of `shapes` (the first is the one named in the error).
    static func check(_ part: StoredPart, _ dtype: DType, _ shapes: [Shape]) throws(Problem) {
        guard part.tensor.dtype == dtype else { throw Problem("'\(part.name)' is \(part.tensor.dtype), expected \(dtype)") }
        guard shapes.contains(part.tensor.shape) else { throw Problem("'\(part.name)' has shape \(part.tensor.shape), expected \(shapes[0])") }
    }

    /// The dense tensor of a `sparse-bitmask` record, after checking every part: dtypes and shapes,
    /// zero padding bits, one value per mask bit and row offsets that are the running mask counts.
    /// The mask and row offsets may also have the dense shape's leading dimensions (what
    /// `numpy.packbits` gives for a tensor of rank other than 2).
    static func decodeBitmask(shape shapePart: StoredPart, compressed: StoredPart, bitmask: StoredPart, rowOffsets: StoredPart) throws(Problem) -> DenseTensor {
        let shape = try denseShape(shapePart)
        let expected = try expectedParts(.bitmask(nonZeroCount: 0), shape: shape, values: compressed)
        let (rows, columns) = rowsAndColumns(shape)!
        let leading = Array(shape.dimensions.dropLast())
        let rowBytes = expected[.bitmask]!.shape.dimensions[1]
        try check(bitmask, .u8, [expected[.bitmask]!.shape, Shape(leading + [rowBytes])])
        try check(rowOffsets, .i64, [expected[.rowOffsets]!.shape, Shape(leading)])
        guard compressed.tensor.shape.rank == 1 else { throw Problem("'\(compressed.name)' has shape \(compressed.tensor.shape), expected [count]") }
        let size = compressed.tensor.dtype.bitsPerElement / 8, valueCount = compressed.tensor.elementCount
        let mask = bitmask.tensor.storage.array
        if columns % 8 != 0 {
            for r in 0..<rows where mask[r * rowBytes + rowBytes - 1] >> UInt8(columns % 8) != 0 {
                throw Problem("'\(bitmask.name)' row \(r) has bits set after its \(columns) columns")
            }
        }
        let setBits = mask.reduce(0) { $0 + $1.nonzeroBitCount }
        guard setBits == valueCount else { throw Problem("'\(bitmask.name)' marks \(setBits) non-zeros, but '\(compressed.name)' holds \(valueCount) values") }
        let offsets = rowOffsets.tensor.storage.withUnsafeBytes { SparseElements.int64s($0, count: rows) }
        var running = 0
        for r in 0..<rows {
            let o = offsets[r]
            guard o >= 0 && o <= valueCount else { throw Problem("'\(rowOffsets.name)' row \(r) starts at \(o), outside 0...\(valueCount)") }
            guard r == 0 || o >= offsets[r - 1] else { throw Problem("'\(rowOffsets.name)' decreases at row \(r) (\(offsets[r - 1]) then \(o))") }
            guard o == running else { throw Problem("'\(rowOffsets.name)' row \(r) starts at \(o), but the bitmask puts it at \(running)") }
            for i in 0..<rowBytes { running += mask[r * rowBytes + i].nonzeroBitCount }
        }
        let dtype = compressed.tensor.dtype, byteCount = dtype.byteCount(elementCount: shape.elementCount)!
        let dense = compressed.tensor.storage.withUnsafeBytes { values in
            ByteStorage(count: byteCount) { out in
                out.initializeMemory(as: UInt8.self, repeating: 0)
                var k = 0
                for r in 0..<rows {
                    for i in 0..<rowBytes {
                        var bits = mask[r * rowBytes + i]
                        while bits != 0 {
                            let c = i * 8 + bits.trailingZeroBitCount
                            bits &= bits - 1
                            SparseElements.copy(values, k, to: out, r * columns + c, size: size)
                            k += 1
                        }
                    }
                }
            }
        }
        return try! DenseTensor(dtype: dtype, shape: shape, storage: dense)
    }

    /// The dense tensor of a `sparse-n-of-m` record, after checking every part: dtypes and shapes,
    /// rows made of whole groups, positions inside their group and not repeated, zero padding bits.
    static func decodeNOfM(kept n: Int, group m: Int, shape shapePart: StoredPart, compressed: StoredPart, indices: StoredPart) throws(Problem) -> DenseTensor {
        let shape = try denseShape(shapePart)
        let (_, columns) = rowsAndColumns(shape) ?? (0, 0)
        guard columns % m == 0 else { throw Problem("rows of \(columns) elements are not whole groups of \(m)") }
        let expected = try expectedParts(.nOfM(kept: n, group: m), shape: shape, values: compressed)
        let (rows, _) = rowsAndColumns(shape)!
        try check(compressed, compressed.tensor.dtype, [expected[.compressed]!.shape])
        try check(indices, .u8, [expected[.indices]!.shape])
        let dtype = compressed.tensor.dtype, byteCount = dtype.byteCount(elementCount: shape.elementCount)!
        guard byteCount > 0 else { return try! DenseTensor(dtype: dtype, shape: shape, storage: ByteStorage([])) }
        let size = dtype.bitsPerElement / 8, b = indexBits(group: m), keptPerRow = columns / m * n
        let rowBytes = expected[.indices]!.shape.dimensions[1], usedBits = keptPerRow * b
        let packed = indices.tensor.storage.array
        var problem: Problem?
        let dense = compressed.tensor.storage.withUnsafeBytes { values in
            ByteStorage(count: byteCount) { out in
                out.initializeMemory(as: UInt8.self, repeating: 0)
                rowLoop: for r in 0..<rows {
                    let row = r * rowBytes
                    if usedBits % 8 != 0, packed[row + rowBytes - 1] >> UInt8(usedBits % 8) != 0 {
                        problem = Problem("'\(indices.name)' row \(r) has bits set after its \(keptPerRow) positions")
                        break rowLoop
                    }
                    for g in 0..<(columns / m) {
                        var seen: UInt64 = 0
                        for j in 0..<n {
                            let field = g * n + j, bit = field * b, o = row + (bit >> 3)
                            var word = UInt16(packed[o])
                            if (bit & 7) + b > 8 { word |= UInt16(packed[o + 1]) << 8 }
                            let position = Int((word >> UInt16(bit & 7)) & UInt16((1 << b) - 1))
                            guard position < m else {
                                problem = Problem("'\(indices.name)' row \(r), group \(g) keeps position \(position), outside the group of \(m)")
                                break rowLoop
                            }
                            guard seen & (1 << UInt64(position)) == 0 else {
                                problem = Problem("'\(indices.name)' row \(r), group \(g) keeps position \(position) twice")
                                break rowLoop
                            }
                            seen |= 1 << UInt64(position)
                            SparseElements.copy(values, r * keptPerRow + field, to: out, r * columns + g * m + position, size: size)
                        }
                    }
                }
            }
        }
        if let problem { throw problem }
        return try! DenseTensor(dtype: dtype, shape: shape, storage: dense)
    }
}
