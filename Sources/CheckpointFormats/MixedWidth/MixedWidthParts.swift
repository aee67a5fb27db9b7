import TensorCore

/// The parts of a tensor with per-column widths (`QuantizedTensor.columnBits`) as both file layouts
/// store them, and the checks both readers run before building it (`CompressedTensorsLayout` and
/// `GGUFQuantizedLayout` each name and type the parts their own way).
///
/// Stored, for a tensor of `rows` rows, column widths `b_c` and K width classes: the codes as
/// `ColumnBitstream` rows `[rows, ⌈Σ_c b_c / 8⌉]` bytes, one width per column `[columns]` (0...8),
/// scales `[rows, K]` in (row, class) order and, when asymmetric, zero points `[rows, K]` (each below
/// `2^b` of its class). A symmetric tensor stores no zero points (they are `2^(b−1)`).
enum MixedWidthParts {
    /// The name both layouts record for this storage form.
    static let formatName = "mixed-column-quantized"

    /// Why stored parts do not fit; each reader adds the file and the tensor.
    struct Problem: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// True when every scale is an FP16 value, subnormals included (then scales are stored as F16).
    /// The mixed-width quantizers round their scales so (`IntegerQuantizer.halfStorable`): bit
    /// allocation budgets 16 bits per scale, so a tiny class range must not cost an F32 tensor.
    static func scalesFitHalf(_ scales: [Float]) -> Bool { GGUFQuantizedLayout.fitsHalf(scales) }

    /// K: the number of distinct nonzero widths.
    static func classCount(_ columnBits: [UInt8]) -> Int {
        Set(columnBits.filter { $0 > 0 }).count
    }

    /// `[rows, ⌈Σ_c b_c / 8⌉]`.
    static func packedShape(_ shape: Shape, columnBits: [UInt8]) -> Shape {
        Shape([shape.rowCount, ColumnBitstream.rowByteCount(columnBits: columnBits)])
    }

    /// `[rows, K]`, the shape of the scales and of the zero points.
    static func classShape(_ shape: Shape, columnBits: [UInt8]) -> Shape {
        Shape([shape.rowCount, classCount(columnBits)])
    }

    /// The codes as stored: `rows · ⌈Σ_c b_c / 8⌉` bytes.
    static func packedCodes(_ q: QuantizedTensor, columnBits: [UInt8]) -> [UInt8] {
        ColumnBitstream.pack(q.codes, rows: q.rowCount, columnBits: columnBits)
    }

    /// `t` has one of `dtypes`, then `shape.elementCount` elements (`what` names them), then `shape`.
    static func check(_ t: DenseTensor, part: String, dtypes: [DType], shape: Shape, counting what: String) throws(Problem) {
        guard dtypes.contains(t.dtype) else { throw Problem("'\(part)' is \(t.dtype), expected \(dtypes.map(\.rawValue).joined(separator: " or "))") }
        guard t.elementCount == shape.elementCount else { throw Problem("'\(part)' holds \(t.elementCount) \(what), expected \(shape.elementCount)") }
        guard t.shape == shape else { throw Problem("'\(part)' has shape \(t.shape), expected \(shape)") }
    }

    /// The column widths stored in `t`: one byte per column, each at most 8.
    static func columnBits(_ t: DenseTensor, part: String, dtypes: [DType], columns: Int) throws(Problem) -> [UInt8] {
        try check(t, part: part, dtypes: dtypes, shape: Shape([columns]), counting: "widths")
        let widths = t.storage.array
        if let c = widths.firstIndex(where: { $0 > 8 }) { throw Problem("'\(part)' gives column \(c) a width of \(widths[c]) bits (at most 8)") }
        return widths
    }

    /// The most elements a tensor may declare per byte of its stored parts, beyond `unbackedElements`:
    /// columns of width 0 take no bits, so rows × columns is not bounded by the file (every column at
    /// width 0 stores only the widths). Decoding allocates a byte per element, then a float.
    static let elementsPerStoredByte = 256
    /// Elements any tensor may declare whatever it stores (2^26: 64 MiB of codes).
    static let unbackedElements = 1 << 26

    /// The tensor, once the record's `bits` is the widest column, the scales are finite and every zero
    /// point (nil for symmetric tensors) fits its class, and its element count is within
    /// max(`unbackedElements`, `elementsPerStoredByte` × stored bytes) (checked before anything is
    /// allocated). The parts' dtypes and shapes are checked.
    static func tensor(shape: Shape, symmetric: Bool, bits: Int, columnBits: [UInt8], packed: DenseTensor, packedPart: String,
                       scales: [Float], zeroPoints: [Int32]?) throws(Problem) -> QuantizedTensor {
        let stored = packed.byteCount + columnBits.count + 2 * scales.count + (zeroPoints?.count ?? 0)
        guard shape.elementCount <= max(unbackedElements, elementsPerStoredByte * stored) else {
            throw Problem("shape \(shape) declares \(shape.elementCount) elements for \(stored) stored bytes (at most \(elementsPerStoredByte) per byte, or \(unbackedElements))")
        }
        let widest = Int(columnBits.max() ?? 0)
        guard bits == widest else { throw Problem("the record gives \(bits) bits, but the widest column has \(widest)") }
        let widths = Set(columnBits.filter { $0 > 0 }.map(Int.init)).sorted(), k = widths.count
        if let i = scales.firstIndex(where: { !$0.isFinite }) {
            throw Problem("scale \(scales[i]) of row \(i / k), width class \(widths[i % k]) is not finite")
        }
        var zeros = [Int32](repeating: 0, count: scales.count)
        for i in zeros.indices {
            let b = widths[i % k]
            if let zeroPoints {
                let z = zeroPoints[i]
                guard z >= 0 && z < 1 << b else { throw Problem("zero point \(z) of row \(i / k) does not fit its \(b)-bit class") }
                zeros[i] = z
            } else {
                zeros[i] = 1 << (b - 1)
            }
        }
        let unpacked = packed.storage.withUnsafeBytes { ColumnBitstream.unpack($0, rows: shape.rowCount, columnBits: columnBits) }
        switch unpacked {
        case .failure(let dirty): throw Problem("'\(packedPart)' row \(dirty.row) has nonzero bits after its last code")
        case .success(let codes):
            return QuantizedTensor(shape: shape, symmetric: symmetric, columnBits: columnBits, codes: codes, scales: scales, zeroPoints: zeros)
        }
    }
}
