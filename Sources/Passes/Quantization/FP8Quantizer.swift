import TensorCore

/// FP8 weight quantization with a per-channel (per output row) or per-tensor scale.
///
/// `s = max|x| / maxFinite` (448 for E4M3, 57344 for E5M2), codes `c = fp8(x / s)` (round to nearest
/// even, saturating; see `FP8Format`), reconstruction `x̂ = decode(c) · s`. Zero maps to the code 0,
/// so zeros stay exactly zero. An all-zero group keeps scale 1. Scales are F32, as compressed-tensors'
/// FP8 checkpoints store `weight_scale`. The result is a `QuantizedTensor` with the `.float8` scheme.
public struct FP8Quantizer: Sendable, Equatable {
    public let kind: FP8Format.Kind
    /// One scale per row (`true`) or one for the tensor.
    public let perChannel: Bool

    public init(kind: FP8Format.Kind, perChannel: Bool = true) {
        self.kind = kind
        self.perChannel = perChannel
    }

    /// Quantizes row-major finite `values` of `shape`.
    public func quantize(_ values: [Float], shape: Shape) -> QuantizedTensor {
        precondition(values.count == shape.elementCount, "quantize: shape does not fit")
        let codec = kind.format
        let groupSize = perChannel ? max(shape.columnCount, 1) : max(values.count, 1)
        let groups = values.isEmpty ? 1 : (values.count + groupSize - 1) / groupSize
        var scales = [Float](repeating: 1, count: groups)
        var codes = [UInt8](repeating: 0, count: values.count)
        for g in 0..<groups where !values.isEmpty {
            let range = (g * groupSize)..<min((g + 1) * groupSize, values.count)
            let absmax = values[range].reduce(Float(0)) { max($0, abs($1)) }
            let scale: Float = absmax > 0 ? absmax / codec.maxFinite : 1
            scales[g] = scale
            for i in range { codes[i] = codec.encode(values[i] / scale) }
        }
        return QuantizedTensor(shape: shape, scheme: .float8(kind), bits: 8, symmetric: true,
                               granularity: perChannel ? .channel : .tensor, codes: codes, scales: scales,
                               zeroPoints: [Int32](repeating: 0, count: groups))
    }
}
