#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorCore

/// Weight-space error of a reconstruction `W'` of the original values `W`, from one pass over both.
///
/// With `ΔW = W − W'` and every sum taken in `Double` over all elements:
/// - `relativeError = ||ΔW||_F / ||W||_F` (DESIGN.md `relative_error`; note: not squared, so it is the
///   square root of the `ε` of algorithms.md §0). 0 when `W` and `W'` are both all zeros; `+∞` when
///   `W` is all zeros and `W'` is not.
/// - `sqnrDecibels = 10·log10(||W||² / ||ΔW||²) = −20·log10(relativeError)`: `+∞` for an exact
///   reconstruction (including an all-zero `W` reproduced exactly), `−∞` when `W` is all zeros and
///   `W'` is not.
/// - `maxAbsoluteError = max_i |W_i − W'_i|` (0 for empty tensors).
/// - `cosine = ⟨W, W'⟩ / (||W|| · ||W'||)`: 1 when both are all zeros, 0 when exactly one is.
/// - `sparsity = #{i : W'_i == 0} / n`, the fraction of exact zeros of `W'` (−0 counts; 0 when n = 0).
///
/// NaN or infinite inputs give NaN (or infinite) metrics instead of trapping.
/// Cost: one read of each operand, SIMD over 8 lanes, no allocation. Deterministic: the summation
/// order depends only on the element count.
public struct ErrorMetrics: Sendable, Equatable {
    /// Number of values compared, `n`.
    public let elementCount: Int
    /// `||W||_F² = Σ W_i²`.
    public let originalSquaredNorm: Double
    /// `||W'||_F² = Σ W'_i²`.
    public let reconstructionSquaredNorm: Double
    /// `||ΔW||_F² = Σ (W_i − W'_i)²`, summed directly (no cancellation from expanding the square).
    public let errorSquaredNorm: Double
    /// `⟨W, W'⟩ = Σ W_i W'_i`.
    public let innerProduct: Double
    /// `max_i |W_i − W'_i|`.
    public let maxAbsoluteError: Double
    /// `#{i : W'_i == 0}`.
    public let reconstructionZeroCount: Int

    /// Measures `reconstruction` against `original`; both must hold the same number of values.
    public init(original: UnsafeBufferPointer<Float>, reconstruction: UnsafeBufferPointer<Float>) throws(MetricsError) {
        guard original.count == reconstruction.count else {
            throw .countMismatch(original: original.count, reconstruction: reconstruction.count)
        }
        let sums = MetricSums.accumulate(original.baseAddress, reconstruction.baseAddress, count: original.count)
        elementCount = original.count
        originalSquaredNorm = sums.ww
        reconstructionSquaredNorm = sums.rr
        errorSquaredNorm = sums.dd
        innerProduct = sums.wr
        maxAbsoluteError = sums.dd.isNaN ? .nan : sums.maxAbs
        reconstructionZeroCount = sums.zeros
    }

    /// Measures `reconstruction` against `original`; both must hold the same number of values.
    public init(original: [Float], reconstruction: [Float]) throws(MetricsError) {
        let result = original.withUnsafeBufferPointer { w in
            reconstruction.withUnsafeBufferPointer { r in
                Result { () throws(MetricsError) in try ErrorMetrics(original: w, reconstruction: r) }
            }
        }
        self = try result.get()
    }

    /// Measures two dense float tensors of the same shape (any dtypes `DenseTensor.floats()` decodes).
    public init(original: DenseTensor, reconstruction: DenseTensor) throws {
        guard original.shape == reconstruction.shape else {
            throw MetricsError.shapeMismatch(original: original.shape.dimensions, reconstruction: reconstruction.shape.dimensions)
        }
        try self.init(original: try original.floats(), reconstruction: try reconstruction.floats())
    }

    /// `||W − W'||_F / ||W||_F`; 0 when both norms are 0, `+∞` when only `||W||` is 0.
    public var relativeError: Double {
        ErrorMetrics.ratio(errorSquaredNorm.squareRoot(), originalSquaredNorm.squareRoot())
    }

    /// `10·log10(||W||² / ||W − W'||²)`; `+∞` when exact, `−∞` when `W` is all zeros and `W'` is not.
    public var sqnrDecibels: Double {
        if errorSquaredNorm == 0 { return .infinity }
        if originalSquaredNorm == 0 { return -.infinity }
        return 10 * log10(originalSquaredNorm / errorSquaredNorm)
    }

    /// `⟨W, W'⟩ / (||W|| · ||W'||)`; 1 when both are all zeros, 0 when exactly one is.
    public var cosine: Double {
        let wn = originalSquaredNorm.squareRoot(), rn = reconstructionSquaredNorm.squareRoot()
        if wn == 0 && rn == 0 { return 1 }
        if wn == 0 || rn == 0 { return 0 }
        return innerProduct / (wn * rn)
    }

    /// Fraction of exact zeros in `W'`, in [0, 1]; 0 for an empty tensor.
    public var sparsity: Double {
        elementCount == 0 ? 0 : Double(reconstructionZeroCount) / Double(elementCount)
    }

    /// `numerator / denominator` with the report's conventions: `0/0 = 0`, `x/0 = +∞` for x > 0.
    static func ratio(_ numerator: Double, _ denominator: Double) -> Double {
        if denominator == 0 { return numerator == 0 ? 0 : (numerator.isNaN ? .nan : .infinity) }
        return numerator / denominator
    }
}

/// The running sums of one pass over `W` and `W'`.
struct MetricSums {
    var ww = 0.0, rr = 0.0, wr = 0.0, dd = 0.0, maxAbs = 0.0
    var zeros = 0

    /// Sums over `count` values, 8 lanes at a time in `Double`; the lane layout (and so the rounding)
    /// depends only on `count`.
    static func accumulate(_ w: UnsafePointer<Float>?, _ r: UnsafePointer<Float>?, count: Int) -> MetricSums {
        var sums = MetricSums()
        guard count > 0, let w, let r else { return sums }
        var ww = SIMD8<Double>(), rr = SIMD8<Double>(), wr = SIMD8<Double>(), dd = SIMD8<Double>()
        var maxAbs = SIMD8<Double>()
        let vectorEnd = count & ~7
        var blockStart = 0
        // Zero counts go through Int32 lanes, flushed every block so they cannot overflow.
        let blockLength = 1 << 16
        while blockStart < vectorEnd {
            let blockEnd = min(vectorEnd, blockStart + blockLength)
            var zeroLanes = SIMD8<Int32>()
            var i = blockStart
            while i < blockEnd {
                let wf = UnsafeRawPointer(w + i).loadUnaligned(as: SIMD8<Float>.self)
                let rf = UnsafeRawPointer(r + i).loadUnaligned(as: SIMD8<Float>.self)
                let wd = SIMD8<Double>(wf), rd = SIMD8<Double>(rf)
                let d = wd - rd
                // A separate multiply and add: when the build targets CPUs without FMA, `addProduct`
                // becomes a libm `fma` call per lane (10x slower). Masked selects, not `pointwiseMax`
                // (which is not vectorized); a NaN shows up in `dd` instead.
                ww += wd * wd
                rr += rd * rd
                wr += wd * rd
                dd += d * d
                let absolute = d.replacing(with: -d, where: d .< 0)
                maxAbs.replace(with: absolute, where: absolute .> maxAbs)
                zeroLanes &+= SIMD8<Int32>(repeating: 0).replacing(with: 1, where: rf .== SIMD8<Float>(repeating: 0))
                i += 8
            }
            sums.zeros += Int(zeroLanes.wrappedSum())
            blockStart = blockEnd
        }
        sums.ww = ww.sum(); sums.rr = rr.sum(); sums.wr = wr.sum(); sums.dd = dd.sum()
        sums.maxAbs = maxAbs.max()
        for i in vectorEnd..<count {
            let wd = Double(w[i]), rd = Double(r[i]), d = wd - rd
            sums.ww += wd * wd; sums.rr += rd * rd; sums.wr += wd * rd; sums.dd += d * d
            sums.maxAbs = max(sums.maxAbs, abs(d))
            if r[i] == 0 { sums.zeros += 1 }
        }
        return sums
    }
}
