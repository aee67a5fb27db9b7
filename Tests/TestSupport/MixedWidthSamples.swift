import TensorCore

/// Random tensors with a width per column (`QuantizedTensor.columnBits`) for the tests of every layer
/// that stores or reads them.
public enum MixedWidthSamples {
    /// A random mixed-width tensor of `dims`: column c gets `widths[c % widths.count]`; codes below
    /// `2^b_c` (0 for width 0); positive scales, FP16-exact unless `halfScales` is false; random zero
    /// points below `2^b` when asymmetric.
    public static func make(_ dims: [Int], widths: [UInt8], symmetric: Bool, seed: UInt64, halfScales: Bool = true) -> QuantizedTensor {
        var rng = SeededGenerator(seed: seed)
        let shape = Shape(dims)
        let columns = shape.columnCount, rows = shape.rowCount
        let columnBits = (0..<columns).map { widths[$0 % widths.count] }
        let classes = Set(columnBits.filter { $0 > 0 }).sorted()
        let codes = (0..<shape.elementCount).map { i in UInt8(truncatingIfNeeded: rng.next() % (UInt64(1) << UInt64(columnBits[i % columns]))) }
        let scales = (0..<(rows * classes.count)).map { _ -> Float in
            let s = Float(rng.nextUnitDouble()) * 0.1 + 0.001
            return halfScales ? HalfPrecision.float(halfBits: HalfPrecision.halfBits(s)) : s
        }
        let zeros = (0..<(rows * classes.count)).map { g -> Int32 in
            let b = Int(classes[g % classes.count])
            return symmetric ? Int32(1 << (b - 1)) : Int32(rng.next() % UInt64(1 << b))
        }
        return QuantizedTensor(shape: shape, symmetric: symmetric, columnBits: columnBits, codes: codes, scales: scales, zeroPoints: zeros)
    }

    /// The definition of a mixed-width tensor's values: `scales[r·K + k] · Float(code − zeroPoints[r·K + k])`
    /// with k the class of column c's width, and 0 for width 0.
    public static func definition(_ q: QuantizedTensor) -> [Float] {
        let classes = q.widthClasses, columns = q.columnCount
        return (0..<q.codes.count).map { i in
            let r = i / columns, c = i % columns
            guard let b = q.columnBits?[c], b > 0, let k = classes.firstIndex(of: Int(b)) else { return 0 }
            let g = r * classes.count + k
            return q.scales[g] * Float(Int32(q.codes[i]) - q.zeroPoints[g])
        }
    }
}
