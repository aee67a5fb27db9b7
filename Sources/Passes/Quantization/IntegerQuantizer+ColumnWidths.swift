import TensorCore

/// Round-to-nearest quantization with a width per input column (the storage form bit allocation
/// produces; see `QuantizedTensor.columnBits`).
///
/// Definition: for each width class b (the distinct nonzero widths), take the sub-matrix of the
/// columns of width b, in column order, and quantize it with `IntegerQuantizer(bits: b, symmetric:
/// symmetric, granularity: .channel, clipping: clipping)`. Its per-row scales and zero points become
/// the tensor's (row, class) entries and its codes go back to their columns, unchanged: the same
/// range choice, the same codes and the same FP16 scale rounding as that quantizer (which rounds a
/// class's scales to FP16 only when all of that class's scales are normal FP16 numbers), except that a
/// scale left in F32 is then rounded to FP16 with subnormals allowed and its row's codes of that
/// class re-encoded, so that every scale is stored in 16 bits (the storage bit allocation budgets).
/// Columns of width 0 get code 0.
/// The output does not depend on `threadCount` (the channel quantizer's does not).
extension IntegerQuantizer {
    /// Quantizes row-major `values` of `shape` with the width `columnBits[c]` (0 or 2...8) for column c.
    /// Needs `.channel` granularity; `bits` is not used. Values must be finite (the caller checks).
    public func quantize(_ values: [Float], shape: Shape, columnBits: [UInt8], threadCount: Int = 1) -> QuantizedTensor {
        precondition(values.count == shape.elementCount, "quantize: shape does not fit")
        guard let result = values.withUnsafeBytes({ quantize(float32: $0, shape: shape, columnBits: columnBits, threadCount: threadCount) }) else {
            preconditionFailure("quantize: values must be finite")
        }
        return result
    }

    /// `quantize(_:shape:columnBits:threadCount:)` on F32 values given as little-endian bytes (any
    /// alignment, e.g. a memory map); nil when one of them, in any column, is NaN or ±Inf.
    public func quantize(float32 bytes: UnsafeRawBufferPointer, shape: Shape, columnBits: [UInt8], threadCount: Int = 1) -> QuantizedTensor? {
        precondition(granularity == .channel, "quantize: column widths need per-channel granularity")
        precondition(bytes.count == 4 * shape.elementCount, "quantize: shape does not fit")
        precondition(columnBits.count == shape.columnCount && columnBits.allSatisfy { $0 == 0 || (2...8).contains($0) },
                     "quantize: one width per column, 0 or 2...8")
        let rows = shape.rowCount, columns = shape.columnCount
        let widths = Set(columnBits.filter { $0 > 0 }).sorted()
        var codes = [UInt8](repeating: 0, count: shape.elementCount)
        var scales = [Float](repeating: 0, count: rows * widths.count)
        var zeros = [Int32](repeating: 0, count: rows * widths.count)
        let unused = (0..<columns).filter { columnBits[$0] == 0 }
        guard Self.allFinite(bytes, rows: rows, columns: columns, selecting: unused, threadCount: threadCount) else { return nil }
        for (k, b) in widths.enumerated() {
            let selected = (0..<columns).filter { columnBits[$0] == b }
            let sub = Self.gather(bytes, rows: rows, columns: columns, selecting: selected, threadCount: threadCount)
            let quantizer = IntegerQuantizer(bits: Int(b), symmetric: symmetric, granularity: .channel, clipping: clipping)
            guard let part = sub.withUnsafeBytes({ quantizer.quantize(float32: $0, shape: Shape([rows, selected.count]), threadCount: threadCount) }) else {
                return nil
            }
            var partCodes = part.codes
            for r in 0..<rows {
                var scale = part.scales[r]
                // A scale that is not an FP16 value (a range too small for a normal FP16 step) is
                // rounded to one, subnormals included, and the row's codes re-encoded with it.
                if let half = Self.halfStorable(scale), half != scale {
                    let top = Int32((1 << Int(b)) - 1)   // symmetric: codes 1...top around 2^(b−1)
                    let fixed = Grid(scale: half, zero: part.zeroPoints[r], qmin: symmetric ? 1 : 0, qmax: top)
                    for j in selected.indices { partCodes[r * selected.count + j] = quantizer.encode(sub[r * selected.count + j], fixed) }
                    scale = half
                }
                scales[r * widths.count + k] = scale
                zeros[r * widths.count + k] = part.zeroPoints[r]
            }
            codes.withUnsafeMutableBufferPointer { codes in
                ParallelLoop.forEachRange(count: rows, threadCount: threadCount) { range in
                    for r in range {
                        for (j, c) in selected.enumerated() { codes[r * columns + c] = partCodes[r * selected.count + j] }
                    }
                }
            }
        }
        return QuantizedTensor(shape: shape, symmetric: symmetric, columnBits: columnBits, codes: codes, scales: scales, zeroPoints: zeros)
    }

    /// The F32 values of `selected` columns of every row, row-major `[rows, selected.count]`.
    private static func gather(_ bytes: UnsafeRawBufferPointer, rows: Int, columns: Int, selecting selected: [Int], threadCount: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * selected.count) { out, initialized in
            ParallelLoop.forEachRange(count: rows, threadCount: threadCount) { range in
                for r in range {
                    for (j, c) in selected.enumerated() {
                        out[r * selected.count + j] = bytes.loadUnaligned(fromByteOffset: 4 * (r * columns + c), as: Float.self)
                    }
                }
            }
            initialized = rows * selected.count
        }
    }

    /// Whether the values of `selected` columns are all finite (read in place, row by row).
    private static func allFinite(_ bytes: UnsafeRawBufferPointer, rows: Int, columns: Int, selecting selected: [Int], threadCount: Int) -> Bool {
        guard !selected.isEmpty else { return true }
        var finite = [Bool](repeating: true, count: rows)
        finite.withUnsafeMutableBufferPointer { finite in
            ParallelLoop.forEachRange(count: rows, threadCount: threadCount) { range in
                for r in range {
                    finite[r] = selected.allSatisfy { bytes.loadUnaligned(fromByteOffset: 4 * (r * columns + $0), as: Float.self).isFinite }
                }
            }
        }
        return !finite.contains(false)
    }
}
