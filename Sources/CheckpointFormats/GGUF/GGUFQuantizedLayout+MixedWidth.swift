import TensorCore

/// Integer tensors with a width per column (`QuantizedTensor.columnBits`) in GGUF: the keys of every
/// quantized tensor (`scheme` int, `bits` the widest column, `symmetric`, `granularity` channel,
/// `shape`) plus `format` = `mixed-column-quantized`, and these parts (numpy shapes):
/// - `<name>` I8 `[rows, ⌈Σ_c b_c / 8⌉]`: each row a little-endian bitstream of its codes at their
///   column widths, least significant bit first, columns of width 0 taking no bits (`ColumnBitstream`;
///   read the bytes with `.view(np.uint8)`);
/// - `<name>.scale` F16 (when every scale survives FP16, as for uniform tensors) or F32 `[rows, K]`, in
///   (row, class) order for the K distinct nonzero widths, ascending;
/// - `<name>.zero_point` I8, I16 or I32 (the narrowest holding every value) `[rows, K]`: asymmetric only;
/// - `<name>.column_bits` I8 `[columns]`: the width of each column, 0...8.
/// Value of (r, c) with `b_c > 0`: `scale[r, k] · (code − zero_point[r, k])` (k the class of `b_c`;
/// symmetric zero point `2^(b−1)`); 0 for `b_c = 0`.
extension GGUFQuantizedLayout {
    /// The stored parts of a mixed-width tensor, codes first. Refuses non-finite scales (an asymmetric
    /// range wider than the F32 range), which no reader accepts.
    static func encodeMixedWidths(name: String, _ q: QuantizedTensor, columnBits: [UInt8]) throws -> [(name: String, tensor: DenseTensor)] {
        if let scale = q.scales.first(where: { !$0.isFinite }) {
            throw GGUFQuantizedLayoutError.unstorable(tensor: name, reason: "scale \(scale) is not finite")
        }
        let classShape = MixedWidthParts.classShape(q.shape, columnBits: columnBits)
        var parts: [(name: String, tensor: DenseTensor)] = [
            (name, try DenseTensor(dtype: .i8, shape: MixedWidthParts.packedShape(q.shape, columnBits: columnBits),
                                   storage: ByteStorage(MixedWidthParts.packedCodes(q, columnBits: columnBits)))),
            (partName(name, .scale), try DenseTensor(floats: q.scales, shape: classShape, dtype: MixedWidthParts.scalesFitHalf(q.scales) ? .f16 : .f32)),
        ]
        if !q.symmetric { parts.append((partName(name, .zeroPoint), try integerTensor(q.zeroPoints, shape: classShape))) }
        parts.append((partName(name, .columnBits), try DenseTensor(dtype: .i8, shape: Shape([columnBits.count]), storage: ByteStorage(columnBits))))
        return parts
    }

    /// Bytes `encodeMixedWidths` writes (without GGUF's alignment padding).
    static func mixedWidthsStoredByteCount(_ q: QuantizedTensor, columnBits: [UInt8]) -> Int {
        var bytes = q.rowCount * ColumnBitstream.rowByteCount(columnBits: columnBits)
        bytes += q.scales.count * (MixedWidthParts.scalesFitHalf(q.scales) ? 2 : 4)
        if !q.symmetric { bytes += q.zeroPoints.count * integerDType(q.zeroPoints).bitsPerElement / 8 }
        return bytes + columnBits.count
    }
}

extension RecordReader {
    /// The mixed-width tensor of a record with a `format` key, every key and part checked first.
    mutating func mixedWidthTensor() throws -> QuantizedTensor {
        typealias Parts = MixedWidthParts
        let format = try string(.format)
        guard format == Parts.formatName else { throw fail("unknown format '\(format)'") }
        let scheme = try string(.scheme), granularity = try string(.granularity)
        guard scheme == "int", granularity == "channel" else {
            throw fail("\(Parts.formatName) needs scheme 'int' and granularity 'channel', found '\(scheme)' and '\(granularity)'")
        }
        if fields[.nestedBlockSize] != nil || fields[.nestedOffset] != nil { throw fail("\(Parts.formatName) has no nested scales") }
        let bits = try integer(.bits, in: 0...8)
        guard case .bool(let symmetric) = try value(.symmetric) else { throw fail("'\(Layout.key(name, .symmetric))' is not a bool") }
        let shape = try logicalShape()
        do {
            let widthsName = Layout.partName(name, .columnBits)
            let columnBits = try Parts.columnBits(try part(widthsName, [.i8]), part: widthsName, dtypes: [.i8], columns: shape.columnCount)
            let packed = try part(name, [.i8])
            try Parts.check(packed, part: name, dtypes: [.i8], shape: Parts.packedShape(shape, columnBits: columnBits), counting: "bytes")
            let classShape = Parts.classShape(shape, columnBits: columnBits)
            let scaleName = Layout.partName(name, .scale), zeroName = Layout.partName(name, .zeroPoint)
            let scales = try part(scaleName, [.f16, .f32])
            try Parts.check(scales, part: scaleName, dtypes: [.f16, .f32], shape: classShape, counting: "scales")
            var zeroPoints: [Int32]?
            if symmetric {
                if checkpoint[zeroName] != nil { throw Parts.Problem("symmetric, but has zero points '\(zeroName)'") }
            } else {
                let t = try part(zeroName, [.i8, .i16, .i32])
                try Parts.check(t, part: zeroName, dtypes: [.i8, .i16, .i32], shape: classShape, counting: "zero points")
                zeroPoints = Layout.integers(t)
            }
            return try Parts.tensor(shape: shape, symmetric: symmetric, bits: bits, columnBits: columnBits, packed: packed, packedPart: name,
                                    scales: try scales.floats(), zeroPoints: zeroPoints)
        } catch let problem as Parts.Problem {
            throw fail(problem.reason)
        }
    }
}
