import TensorCore

/// Integer tensors with a width per column (`QuantizedTensor.columnBits`) in safetensors, recorded
/// with `"format": "mixed-column-quantized"` beside the usual `{scheme: int, bits, symmetric,
/// granularity: channel}` (`bits` = the widest column):
/// - `<module>.weight_packed` U8 `[rows, ⌈Σ_c b_c / 8⌉]`: each row a little-endian bitstream of its codes
///   at their column widths, least significant bit first; columns of width 0 take no bits (`ColumnBitstream`);
/// - `<module>.weight_scale` F16 (when every scale is a normal FP16 number, as for uniform tensors) or
///   F32 `[rows, K]`, in (row, class) order for the K distinct nonzero widths, ascending;
/// - `<module>.weight_zero_point` U8 `[rows, K]`: asymmetric tensors only;
/// - `<module>.weight_column_bits` U8 `[columns]`: the width of each column, 0...8;
/// - `<module>.weight_shape` I64 `[rank]`, as for uniform integer tensors.
/// Value of (r, c) with `b_c > 0`: `scale[r, k] · (code − zero_point[r, k])` with k the class of `b_c`
/// and zero point `2^(b−1)` for symmetric tensors; 0 for `b_c = 0`.
extension CompressedTensorsLayout {
    /// The stored parts of a mixed-width tensor, in the order they are written.
    /// Refuses non-finite scales (an asymmetric range wider than the F32 range), which no reader accepts.
    static func encodeMixedWidths(module: String, _ q: QuantizedTensor, columnBits: [UInt8]) throws -> [(name: String, tensor: DenseTensor)] {
        if let scale = q.scales.first(where: { !$0.isFinite }) {
            throw CompressedTensorsError.unsupported(tensor: module + ".weight", what: "a mixed-width tensor with scale \(scale)")
        }
        let classShape = MixedWidthParts.classShape(q.shape, columnBits: columnBits)
        var out: [(name: String, tensor: DenseTensor)] = [
            (module + ".weight_packed", try DenseTensor(dtype: .u8, shape: MixedWidthParts.packedShape(q.shape, columnBits: columnBits),
                                                        storage: ByteStorage(MixedWidthParts.packedCodes(q, columnBits: columnBits)))),
            (module + ".weight_scale", try DenseTensor(floats: q.scales, shape: classShape, dtype: MixedWidthParts.scalesFitHalf(q.scales) ? .f16 : .f32)),
        ]
        if !q.symmetric {
            out.append((module + ".weight_zero_point", try DenseTensor(dtype: .u8, shape: classShape, storage: ByteStorage(q.zeroPoints.map { UInt8($0) }))))
        }
        out.append((module + ".weight_column_bits", try DenseTensor(dtype: .u8, shape: Shape([columnBits.count]), storage: ByteStorage(columnBits))))
        out.append((module + ".weight_shape", try shapeTensor(q.shape)))
        return out
    }

    /// Bytes `encodeMixedWidths` writes.
    static func mixedWidthsStoredByteCount(_ q: QuantizedTensor, columnBits: [UInt8]) -> Int {
        var bytes = q.rowCount * ColumnBitstream.rowByteCount(columnBits: columnBits)
        bytes += q.scales.count * (MixedWidthParts.scalesFitHalf(q.scales) ? 2 : 4)
        if !q.symmetric { bytes += q.zeroPoints.count }
        return bytes + columnBits.count + 8 * q.shape.rank
    }

    /// The mixed-width tensor `name` from its record and parts; `part` gives a stored tensor (nil when
    /// there is none) and marks it as used. Every part is checked before anything is built.
    static func decodeMixedWidths(name: String, spec: JSONValue, file: String, part: (String) throws -> DenseTensor?) throws -> QuantizedTensor {
        func fail(_ reason: String) -> CompressedTensorsError { .malformed(tensor: name, reason: "\(file): \(reason)") }
        guard spec["scheme"]?.stringValue == "int", spec["granularity"]?.stringValue == "channel" else {
            throw fail("\(MixedWidthParts.formatName) needs scheme int and granularity channel")
        }
        guard let bits = spec["bits"]?.nonNegativeInt, bits <= 8, case .bool(let symmetric)? = spec["symmetric"] else {
            throw fail("malformed scheme record")
        }
        let module = module(of: name)
        func required(_ suffix: String) throws -> DenseTensor {
            guard let t = try part(module + suffix) else { throw fail("missing part '\(module + suffix)'") }
            return t
        }
        do {
            let shape = try storedShape(try required(".weight_shape"), fail: fail)
            let columnBits = try MixedWidthParts.columnBits(try required(".weight_column_bits"), part: module + ".weight_column_bits",
                                                            dtypes: [.u8], columns: shape.columnCount)
            let packed = try required(".weight_packed")
            try MixedWidthParts.check(packed, part: module + ".weight_packed", dtypes: [.u8],
                                      shape: MixedWidthParts.packedShape(shape, columnBits: columnBits), counting: "bytes")
            let classShape = MixedWidthParts.classShape(shape, columnBits: columnBits)
            let scaleTensor = try required(".weight_scale")
            try MixedWidthParts.check(scaleTensor, part: module + ".weight_scale", dtypes: [.f16, .f32], shape: classShape, counting: "scales")
            var zeroPoints: [Int32]?
            let zeroName = module + ".weight_zero_point"
            if symmetric {
                if try part(zeroName) != nil { throw MixedWidthParts.Problem("symmetric, but has zero points '\(zeroName)'") }
            } else {
                let t = try required(".weight_zero_point")
                try MixedWidthParts.check(t, part: zeroName, dtypes: [.u8], shape: classShape, counting: "zero points")
                zeroPoints = t.storage.array.map { Int32($0) }
            }
            return try MixedWidthParts.tensor(shape: shape, symmetric: symmetric, bits: bits, columnBits: columnBits, packed: packed,
                                              packedPart: module + ".weight_packed", scales: try scaleTensor.floats(), zeroPoints: zeroPoints)
        } catch let problem as MixedWidthParts.Problem {
            throw fail(problem.reason)
        }
    }
}
