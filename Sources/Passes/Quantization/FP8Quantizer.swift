import TensorCore

/// FP8 weight quantization with a per-channel (per output row) or per-tensor scale.
///
/// `s = max|x| / maxFinite` (448 for E4M3, 57344 for E5M2), codes `c = fp8(x / s)` (round to nearest
/// even, saturating; see `FP8Format`), reconstruction `x̂ = decode(c) · s`. Zero maps to the code 0,
/// so zeros stay exactly zero. An all-zero row keeps scale 1. Scales are F32, as compressed-tensors'
/// FP8 checkpoints store `weight_scale`.
public struct FP8Quantizer: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable {
        case e4m3, e5m2

        public var codec: FP8Format { self == .e4m3 ? .e4m3 : .e5m2 }
        public var dtype: DType { self == .e4m3 ? .f8E4M3 : .f8E5M2 }
    }

    public let format: Format
    /// `.channel` (one scale per row) or `.tensor`.
    public let perChannel: Bool

    public init(format: Format, perChannel: Bool = true) {
        self.format = format
        self.perChannel = perChannel
    }

    /// FP8 codes (one byte per element, row-major) and their scales.
    public struct Result: Sendable, Equatable {
        public let shape: Shape
        public let format: Format
        public let codes: [UInt8]
        /// One scale per row, or one for the tensor.
        public let scales: [Float]

        public func dequantized() -> [Float] {
            let codec = format.codec
            let columns = max(shape.columnCount, 1)
            return codes.enumerated().map { i, c in codec.decode(c) * scales[scales.count == 1 ? 0 : i / columns] }
        }

        /// 8 bits per weight plus 32-bit scales.
        public var bitsPerWeight: Double { 8 + Double(scales.count * 32) / Double(max(shape.elementCount, 1)) }
    }

    /// Quantizes row-major finite `values` of `shape`.
    public func quantize(_ values: [Float], shape: Shape) -> Result {
        precondition(values.count == shape.elementCount, "quantize: shape does not fit")
        let codec = format.codec
        let columns = max(shape.columnCount, 1)
        let groups = perChannel ? max(shape.rowCount, values.isEmpty ? 0 : 1) : (values.isEmpty ? 0 : 1)
        let groupSize = perChannel ? columns : values.count
        var scales = [Float](repeating: 1, count: max(groups, 1))
        var codes = [UInt8](repeating: 0, count: values.count)
        for g in 0..<groups {
            let range = (g * groupSize)..<min((g + 1) * groupSize, values.count)
            let absmax = values[range].reduce(Float(0)) { max($0, abs($1)) }
            let scale: Float = absmax > 0 ? absmax / codec.maxFinite : 1
            scales[g] = scale
            for i in range { codes[i] = codec.encode(values[i] / scale) }
        }
        return Result(shape: shape, format: format, codes: codes, scales: scales)
    }
}
