/// A quantized weight with per-tensor, per-channel or per-group scales, independent of any file
/// format (the writers translate it to compressed-tensors safetensors or GGUF tensors).
///
/// Layout: the tensor is viewed as rows (outermost dimension) of `columnCount` values; a row holds
/// groups of `groupSize` columns (per-channel: one group of the whole row; per-tensor: one scale for
/// everything). Element `(r, c)` with group `g` dequantizes, by scheme, to
/// - `.integer`: `scales[g] · (code − zeroPoints[g])`; symmetric schemes have every zero point equal
///   to `2^(bits−1)` (codes are stored unsigned, offset by it);
/// - `.codebook(values)`: `scales[g] · values[code]` (NF4: 16 values, 0 exact);
/// - `.float8(format)`: `scales[g] · format.decode(code)`.
/// In every scheme the value 0 is exactly representable, so pruned weights stay zero.
///
/// Mixed column widths (`columnBits`, integer scheme, `.channel` granularity only): column `c` has its
/// own width `b_c` in 0...8. The distinct nonzero widths, ascending, are the width classes
/// (`widthClasses`, K of them); each row has one scale and zero point per class, stored in (row, class)
/// order, so element `(r, c)` with `b_c > 0` uses group `r·K + classIndex(b_c)`, its code is below
/// `2^b_c`, and a symmetric class of width b has zero point `2^(b−1)`. A column with `b_c = 0` stores
/// code 0 and dequantizes to exactly 0 without reading a scale. `bits` is the widest column.
public struct QuantizedTensor: Sendable, Equatable {
    /// How a code maps to a value before scaling.
    public enum Scheme: Sendable, Equatable {
        case integer
        case codebook([Float])
        case float8(FP8Format.Kind)
    }

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

        /// Parses `tensor`, `channel` or `group:N` (N > 0), the spelling `description` writes.
        public init?(_ text: String) {
            switch text {
            case "tensor": self = .tensor
            case "channel": self = .channel
            default:
                guard text.hasPrefix("group:"), let n = Int(text.dropFirst(6)), n > 0 else { return nil }
                self = .group(n)
            }
        }
    }

    public let shape: Shape
    public let scheme: Scheme
    public let bits: Int
    public let symmetric: Bool
    public let granularity: Granularity
    /// One unsigned code per element, row-major (0 ..< 2^bits).
    public let codes: [UInt8]
    /// One scale per group, in (row, group) order; a single scale for `.tensor`.
    public let scales: [Float]
    /// One integer zero point per group (equal to `2^(bits−1)` for symmetric schemes).
    public let zeroPoints: [Int32]
    /// How `scales` are stored when they are themselves quantized (NF4 with QLoRA's double
    /// quantization); nil when they are stored as they are. `scales` always holds the values used.
    public let nestedScales: NestedScales?
    /// The width (0...8) of each column when columns have their own widths; nil for uniform tensors.
    public let columnBits: [UInt8]?
    /// For mixed widths: the index into `widthClasses` of each column's width, −1 for width 0 (a
    /// table, so `groupIndex` needs no search); empty otherwise.
    @usableFromInline let columnClasses: [Int8]
    /// For mixed widths: the ascending distinct nonzero widths; empty otherwise.
    @usableFromInline let classWidths: [Int]

    /// Scales quantized to 8-bit codes of a 256-entry map in blocks of `blockSize` scales:
    /// `scales[g] = map[codes[g]] · secondLevelScales[g / blockSize] + offset` (FP32 arithmetic).
    public struct NestedScales: Sendable, Equatable {
        public let codes: [UInt8]
        public let secondLevelScales: [Float]
        public let offset: Float
        public let blockSize: Int
        public let map: [Float]

        public init(codes: [UInt8], secondLevelScales: [Float], offset: Float, blockSize: Int, map: [Float]) {
            precondition(blockSize > 0 && map.count == 256 && secondLevelScales.count == (codes.count + blockSize - 1) / blockSize,
                         "inconsistent nested scales")
            self.codes = codes
            self.secondLevelScales = secondLevelScales
            self.offset = offset
            self.blockSize = blockSize
            self.map = map
        }

        /// The scales these codes stand for.
        public func scales() -> [Float] {
            codes.indices.map { g in map[Int(codes[g])] * secondLevelScales[g / blockSize] + offset }
        }
    }

    /// An integer-scheme tensor.
    public init(shape: Shape, bits: Int, symmetric: Bool, granularity: Granularity,
                codes: [UInt8], scales: [Float], zeroPoints: [Int32]) {
        self.init(shape: shape, scheme: .integer, bits: bits, symmetric: symmetric, granularity: granularity,
                  codes: codes, scales: scales, zeroPoints: zeroPoints)
    }

    /// Any scheme; codebook and FP8 tensors have no zero points (pass zeros, one per scale).
    public init(shape: Shape, scheme: Scheme, bits: Int, symmetric: Bool, granularity: Granularity,
                codes: [UInt8], scales: [Float], zeroPoints: [Int32], nestedScales: NestedScales? = nil) {
        precondition(codes.count == shape.elementCount && scales.count == zeroPoints.count
                     && (nestedScales == nil || nestedScales!.codes.count == scales.count), "inconsistent quantized tensor")
        self.shape = shape
        self.scheme = scheme
        self.bits = bits
        self.symmetric = symmetric
        self.granularity = granularity
        self.codes = codes
        self.scales = scales
        self.zeroPoints = zeroPoints
        self.nestedScales = nestedScales
        self.columnBits = nil
        self.columnClasses = []
        self.classWidths = []
    }

    /// An integer tensor whose columns have their own widths (see the type's comment): `scales` and
    /// `zeroPoints` hold `rows · K` entries in (row, class) order for the K distinct nonzero widths of
    /// `columnBits` (one width 0...8 per column); granularity `.channel`, `bits` the widest column.
    /// Traps when the parts break the invariant (readers validate file contents before calling this).
    public init(shape: Shape, symmetric: Bool, columnBits: [UInt8], codes: [UInt8], scales: [Float], zeroPoints: [Int32]) {
        let rows = shape.rowCount, columns = shape.columnCount
        precondition(columnBits.count == columns && columnBits.allSatisfy { $0 <= 8 }, "column widths must be 0...8, one per column")
        let widths = Set(columnBits.filter { $0 > 0 }.map(Int.init)).sorted()
        var classOf = [Int8](repeating: -1, count: 9)
        for (k, b) in widths.enumerated() { classOf[b] = Int8(k) }
        let k = widths.count
        precondition(codes.count == shape.elementCount && scales.count == rows * k && zeroPoints.count == rows * k,
                     "inconsistent mixed-width tensor")
        for r in 0..<(k == 0 ? 0 : rows) {
            for (j, b) in widths.enumerated() {
                let z = zeroPoints[r * k + j]
                precondition(symmetric ? z == Int32(1 << (b - 1)) : (0..<Int32(1 << b)).contains(z), "zero point \(z) does not fit \(b) bits")
            }
        }
        codes.withUnsafeBufferPointer { codes in
            for r in 0..<(columns == 0 ? 0 : rows) {
                for c in 0..<columns {
                    // A code fits its width when nothing is left above it (width 0: the code is 0).
                    precondition(codes[r * columns + c] >> columnBits[c] == 0, "code does not fit its column width")
                }
            }
        }
        self.shape = shape
        self.scheme = .integer
        self.bits = widths.last ?? 0
        self.symmetric = symmetric
        self.granularity = .channel
        self.codes = codes
        self.scales = scales
        self.zeroPoints = zeroPoints
        self.nestedScales = nil
        self.columnBits = columnBits
        self.columnClasses = columnBits.map { classOf[Int($0)] }
        self.classWidths = widths
    }

    /// The ascending distinct nonzero column widths of a mixed-width tensor (K = their count); empty
    /// for a tensor without `columnBits`.
    public var widthClasses: [Int] { classWidths }

    /// The width of column `column`: its own for a mixed-width tensor, else `bits`.
    public func columnWidth(_ column: Int) -> Int {
        columnBits.map { Int($0[column]) } ?? bits
    }

    public var rowCount: Int { shape.rowCount }
    public var columnCount: Int { shape.columnCount }

    /// Columns per group (the whole row for `.channel`, everything for `.tensor`). A mixed-width
    /// tensor's groups are not contiguous; it gives the row length.
    public var groupSize: Int {
        switch granularity {
        case .tensor: max(shape.elementCount, 1)
        case .channel: max(columnCount, 1)
        case .group(let n): n
        }
    }

    /// Index into `scales` of element (row, column); for a mixed-width tensor `row·K + class`, and −1
    /// for a column of width 0 (which has no group: its value is 0).
    @inlinable
    public func groupIndex(row: Int, column: Int) -> Int {
        if !columnClasses.isEmpty {
            let k = Int(columnClasses[column])
            return k < 0 ? -1 : row * classWidths.count + k
        }
        return switch granularity {
        case .tensor: 0
        case .channel: row
        case .group(let n): row * ((columnCount + n - 1) / n) + column / n
        }
    }

    /// Storage bits per weight: packed codes plus scales (16-bit for integer schemes, 32-bit for
    /// FP8 and codebooks, as the writers store them; nested scales: 8 bits each plus a 32-bit
    /// second-level scale per block and the 32-bit offset) and `bits`-bit zero points when asymmetric.
    /// Mixed widths: each row's codes as a bitstream padded to whole bytes, 16-bit scales, 8-bit zero
    /// points when asymmetric and 8 bits per column for the widths.
    public var bitsPerWeight: Double {
        let n = Double(max(shape.elementCount, 1))
        if let columnBits {
            let rowBytes = (columnBits.reduce(0) { $0 + Int($1) } + 7) / 8
            let bytes = rowCount * rowBytes + scales.count * (symmetric ? 2 : 3) + columnBits.count
            return Double(8 * bytes) / n
        }
        let scaleBits: Double
        if let nested = nestedScales {
            scaleBits = Double(8 * nested.codes.count + 32 * nested.secondLevelScales.count + 32)
        } else {
            scaleBits = Double(scales.count) * (scheme == .integer ? 16.0 : 32.0)
        }
        let zeroBits = symmetric ? 0 : Double(zeroPoints.count * bits)
        return Double(bits) + (scaleBits + zeroBits) / n
    }
}
