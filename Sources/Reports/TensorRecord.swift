import TensorCore

/// One tensor's line in a `CompressionReport`: what it was, how it is stored now, and the error.
///
/// JSON member order (DESIGN.md, Reports): `name, shape, dtype_in, encoding, bits_per_weight,
/// sparsity, bytes_in, bytes_out, relative_error, sqnr_db, max_abs_error, cosine,
/// output_relative_error?`, where
/// - `bits_per_weight = 8·bytes_out / parameters` (scales, zero points and codebooks included),
/// - `relative_error = ||W − W'||_F / ||W||_F`, `sqnr_db = 10·log10(||W||² / ||W − W'||²)`,
///   `max_abs_error = max|W − W'|`, `cosine = ⟨W, W'⟩ / (||W||·||W'||)`, `sparsity` = fraction of exact
///   zeros of `W'` (see `ErrorMetrics`),
/// - `output_relative_error = tr(ΔW H ΔWᵀ) / tr(W H Wᵀ)`, present only when calibration statistics
///   were given (the key is then omitted).
public struct TensorRecord: Sendable, Equatable {
    /// Tensor name as in the checkpoint.
    public var name: String
    /// Shape of the original tensor.
    public var shape: Shape
    /// The input dtype, safetensors or ggml spelling (`BF16`, `Q8_0`).
    public var inputDType: String
    /// How the output stores it (`F16`, `Q4_K`, `int4/group:128`, `shared`).
    public var encoding: String
    /// `8·bytes_out / parameters`.
    public var bitsPerWeight: Double
    /// Fraction of exact zeros in the reconstruction, in [0, 1].
    public var sparsity: Double
    /// Bytes the tensor took in the input.
    public var inputByteCount: Int
    /// Bytes the tensor takes in the output (all its parts).
    public var outputByteCount: Int
    /// `||W − W'||_F / ||W||_F` (`+∞` when `W` is all zeros and `W'` is not).
    public var relativeError: Double
    /// `10·log10(||W||² / ||W − W'||²)` (`+∞` when lossless).
    public var sqnrDecibels: Double
    /// `max_i |W_i − W'_i|`.
    public var maxAbsoluteError: Double
    /// `⟨W, W'⟩ / (||W||·||W'||)`.
    public var cosine: Double
    /// `tr(ΔW H ΔWᵀ) / tr(W H Wᵀ)`, nil without calibration statistics.
    public var outputRelativeError: Double?

    /// A record with every field given. `bitsPerWeight` defaults to `8·outputByteCount / parameters`
    /// (0 for an empty tensor).
    public init(
        name: String, shape: Shape, inputDType: String, encoding: String, bitsPerWeight: Double? = nil,
        sparsity: Double, inputByteCount: Int, outputByteCount: Int, relativeError: Double,
        sqnrDecibels: Double, maxAbsoluteError: Double, cosine: Double, outputRelativeError: Double? = nil
    ) {
        self.name = name
        self.shape = shape
        self.inputDType = inputDType
        self.encoding = encoding
        self.bitsPerWeight = bitsPerWeight ?? TensorRecord.bitsPerWeight(bytes: outputByteCount, parameters: shape.elementCount)
        self.sparsity = sparsity
        self.inputByteCount = inputByteCount
        self.outputByteCount = outputByteCount
        self.relativeError = relativeError
        self.sqnrDecibels = sqnrDecibels
        self.maxAbsoluteError = maxAbsoluteError
        self.cosine = cosine
        self.outputRelativeError = outputRelativeError
    }

    /// A record whose error fields come from `metrics`.
    public init(
        name: String, shape: Shape, inputDType: String, encoding: String, inputByteCount: Int,
        outputByteCount: Int, metrics: ErrorMetrics, outputRelativeError: Double? = nil
    ) {
        self.init(
            name: name, shape: shape, inputDType: inputDType, encoding: encoding, sparsity: metrics.sparsity,
            inputByteCount: inputByteCount, outputByteCount: outputByteCount, relativeError: metrics.relativeError,
            sqnrDecibels: metrics.sqnrDecibels, maxAbsoluteError: metrics.maxAbsoluteError, cosine: metrics.cosine,
            outputRelativeError: outputRelativeError)
    }

    /// Number of weights, the product of the shape (1 for a scalar).
    public var parameterCount: Int { shape.elementCount }

    /// `8·bytes / parameters`, 0 when there are no parameters.
    static func bitsPerWeight(bytes: Int, parameters: Int) -> Double {
        parameters == 0 ? 0 : 8 * Double(bytes) / Double(parameters)
    }
}
