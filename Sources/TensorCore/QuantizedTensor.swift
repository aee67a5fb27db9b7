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

    /// Storage bits per weight: packed codes plus scales (16-bit for integer schemes, 32-bit for
    /// FP8 and codebooks, as the writers store them; nested scales: 8 bits each plus a 32-bit
    /// second-level scale per block and the 32-bit offset) and `bits`-bit zero points when asymmetric.
    public var bitsPerWeight: Double {
        let n = Double(max(shape.elementCount, 1))
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
