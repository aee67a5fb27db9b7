/// A weight quantized to integers with per-tensor, per-channel or per-group scales, independent of
/// any file format (the writers translate it to compressed-tensors safetensors or GGUF tensors).
///
/// Layout: the tensor is viewed as rows (outermost dimension) of `columnCount` values; a row holds
/// `groupsPerRow` groups of `groupSize` columns (per-channel: one group of the whole row; per-tensor:
/// one scale for everything). Element `(r, c)` dequantizes to
/// `scales[g] · (codes[r·columns + c] − zeroPoints[g])` with `g` its group index, where symmetric
/// schemes have every zero point equal to `2^(bits−1)` (codes are stored unsigned, offset by it).
/// Because zero points are integers, the value 0 is always exactly representable.
public struct QuantizedTensor: Sendable, Equatable {
    /// How scales are shared.
    public enum Granularity: Sendable, Equatable, CustomStringConvertible {
        case tensor
        case channel
        case group(Int)

        public var description: String {
            switch self {
            case .tensor: "tensor"
            case .channel: "channel"
            case .group(let n): "group:\(n)"
            }
        }
    }

    public let shape: Shape
    public let bits: Int
    public let symmetric: Bool
    public let granularity: Granularity
    /// One unsigned code per element, row-major (0 ..< 2^bits).
    public let codes: [UInt8]
    /// One scale per group, in (row, group) order; a single scale for `.tensor`.
    public let scales: [Float]
    /// One integer zero point per group (equal to `2^(bits−1)` for symmetric schemes).
    public let zeroPoints: [Int32]

    public init(shape: Shape, bits: Int, symmetric: Bool, granularity: Granularity,
                codes: [UInt8], scales: [Float], zeroPoints: [Int32]) {
        precondition(codes.count == shape.elementCount && scales.count == zeroPoints.count, "inconsistent quantized tensor")
        self.shape = shape
        self.bits = bits
        self.symmetric = symmetric
        self.granularity = granularity
        self.codes = codes
        self.scales = scales
        self.zeroPoints = zeroPoints
    }

    public var rowCount: Int { shape.rowCount }
    public var columnCount: Int { shape.columnCount }

    /// Columns per group (the whole row for `.channel`, everything for `.tensor`).
    public var groupSize: Int {
        switch granularity {
        case .tensor: max(shape.elementCount, 1)
        case .channel: max(columnCount, 1)
        case .group(let n): n
        }
    }

    /// Index into `scales` of element (row, column).
    @inlinable
    public func groupIndex(row: Int, column: Int) -> Int {
        switch granularity {
        case .tensor: 0
        case .channel: row
        case .group(let n): row * ((columnCount + n - 1) / n) + column / n
        }
    }

    /// The dequantized values, row-major.
    public func dequantized() -> [Float] {
        let columns = columnCount
        var out = [Float](repeating: 0, count: codes.count)
        for r in 0..<rowCount {
            for c in 0..<columns {
                let g = groupIndex(row: r, column: c)
                out[r * columns + c] = scales[g] * Float(Int32(codes[r * columns + c]) - zeroPoints[g])
            }
        }
        return out
    }

    /// Storage bits per weight: packed codes plus 16-bit scales (and `bits`-bit zero points when
    /// asymmetric), as the writers store them.
    public var bitsPerWeight: Double {
        let n = Double(max(shape.elementCount, 1))
        let scaleBits = Double(scales.count) * 16 + (symmetric ? 0 : Double(zeroPoints.count * bits))
        return Double(bits) + scaleBits / n
    }
}
