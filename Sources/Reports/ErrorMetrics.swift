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
/// Cost: one read of each operand, SIMD over 8 lanes, no allocation (the piecewise form: two 16 KB buffers). Deterministic: the summation
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
        self.init(MetricSums.accumulate(original.baseAddress, reconstruction.baseAddress, count: original.count), count: original.count)
    }

    /// Measures values that are produced piece by piece, so that neither operand is held whole:
    /// `original(range, buffer)` and `reconstruction(range, buffer)` give elements `range` of `W` and
    /// `W'` (`range.count` values), for consecutive ranges of at most 4096 elements that cover
    /// `0..<count`: either written into `buffer` (and `buffer` returned) or as a view of where they
    /// already are. The result equals `init(original:reconstruction:)` on the whole arrays.
    public init(count: Int, original: (Range<Int>, UnsafeMutableBufferPointer<Float>) throws -> UnsafeBufferPointer<Float>,
                reconstruction: (Range<Int>, UnsafeMutableBufferPointer<Float>) throws -> UnsafeBufferPointer<Float>) rethrows {
        let chunkLength = 4096   // a multiple of 8: every piece but the last feeds whole vectors
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * chunkLength)
        defer { scratch.deallocate() }
        var lanes = MetricLanes()
        var sums = MetricSums()
        var start = 0
        while start < count {
            let n = min(chunkLength, count - start)
            let w = try original(start..<(start + n), UnsafeMutableBufferPointer(start: scratch, count: n))
            let r = try reconstruction(start..<(start + n), UnsafeMutableBufferPointer(start: scratch + chunkLength, count: n))
            precondition(w.count == n && r.count == n, "ErrorMetrics: a piece has the wrong length")
            guard let wp = w.baseAddress, let rp = r.baseAddress else { break }
            let isLast = start + n == count
            let vectorCount = isLast ? n & ~7 : n
            lanes.add(wp, rp, count: vectorCount)
            if isLast { sums = lanes.finish(tail: wp + vectorCount, rp + vectorCount, count: n - vectorCount) }
            start += n
        }
        self.init(sums, count: count)
    }

    private init(_ sums: MetricSums, count: Int) {
        elementCount = count
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
        guard count > 0, let w, let r else { return MetricSums() }
        var lanes = MetricLanes()
        let vectorEnd = count & ~7
        lanes.add(w, r, count: vectorEnd)
        return lanes.finish(tail: w + vectorEnd, r + vectorEnd, count: count - vectorEnd)
    }
}

/// The 8-lane accumulators behind `MetricSums`: lane `k` sums the elements `i ≡ k (mod 8)` of the
/// vector part (the first `8·⌊n/8⌋` elements), in index order; `finish` reduces the lanes and adds the
/// remaining `n mod 8` elements one by one. Feeding the vector part in consecutive pieces (each a
/// multiple of 8 long) gives the same bits as feeding it at once.
struct MetricLanes {
    var ww = SIMD8<Double>(), rr = SIMD8<Double>(), wr = SIMD8<Double>(), dd = SIMD8<Double>()
    var maxAbs = SIMD8<Double>()
    var zeros = 0

    /// Adds `count` values (a multiple of 8). Each accumulator sees the same operations in the same order
    /// as in one loop over the values; the loop is split into three passes over L1-sized blocks, each
    /// a separate function, so that the accumulators of a pass stay in registers (SSE2 has 16).
    mutating func add(_ w: UnsafePointer<Float>, _ r: UnsafePointer<Float>, count: Int) {
        precondition(count % 8 == 0, "MetricLanes.add: count must be a multiple of 8")
        let blockLength = 2048
        var start = 0
        while start < count {
            let n = min(blockLength, count - start)
            Self.addSquares(w + start, r + start, count: n, &ww, &rr)
            Self.addProducts(w + start, r + start, count: n, &wr, &dd)
            zeros += Self.addExtremes(w + start, r + start, count: n, &maxAbs)
            start += n
        }
    }

    /// `ww += w²`, `rr += r²`. A separate multiply and add: when the build targets CPUs without FMA,
    /// `addProduct` becomes a libm `fma` call per lane (10x slower).
    @inline(never)
    static func addSquares(_ w: UnsafePointer<Float>, _ r: UnsafePointer<Float>, count: Int,
                           _ ww: inout SIMD8<Double>, _ rr: inout SIMD8<Double>) {
        var a = ww, b = rr
        var i = 0
        while i < count {
            let wd = SIMD8<Double>(UnsafeRawPointer(w + i).loadUnaligned(as: SIMD8<Float>.self))
            let rd = SIMD8<Double>(UnsafeRawPointer(r + i).loadUnaligned(as: SIMD8<Float>.self))
            a += wd * wd
            b += rd * rd
            i += 8
        }
        ww = a
        rr = b
    }

    /// `wr += w·r`, `dd += (w − r)²`.
    @inline(never)
    static func addProducts(_ w: UnsafePointer<Float>, _ r: UnsafePointer<Float>, count: Int,
                            _ wr: inout SIMD8<Double>, _ dd: inout SIMD8<Double>) {
        var a = wr, b = dd
        var i = 0
        while i < count {
            let wd = SIMD8<Double>(UnsafeRawPointer(w + i).loadUnaligned(as: SIMD8<Float>.self))
            let rd = SIMD8<Double>(UnsafeRawPointer(r + i).loadUnaligned(as: SIMD8<Float>.self))
            let d = wd - rd
            a += wd * rd
            b += d * d
            i += 8
        }
        wr = a
        dd = b
    }

    /// `maxAbs = max(maxAbs, |w − r|)` and the number of zeros of `r`.
    ///
    /// `|d|` clears the sign bit, and the maximum is `m = |d| > m ? |d| : m` (one `maxpd`): a NaN or a
    /// −0 never replaces `m`, as with the original compare-and-negate (a NaN shows up in `dd` instead).
    /// Zero counts go through Int32 lanes, flushed every block so they cannot overflow.
    @inline(never)
    static func addExtremes(_ w: UnsafePointer<Float>, _ r: UnsafePointer<Float>, count: Int, _ maxAbs: inout SIMD8<Double>) -> Int {
        var m = maxAbs
        var zeroLanes = SIMD8<Int32>()
        var i = 0
        while i < count {
            let wf = UnsafeRawPointer(w + i).loadUnaligned(as: SIMD8<Float>.self)
            let rf = UnsafeRawPointer(r + i).loadUnaligned(as: SIMD8<Float>.self)
            let d = SIMD8<Double>(wf) - SIMD8<Double>(rf)
            let absolute = unsafeBitCast(unsafeBitCast(d, to: SIMD8<UInt64>.self) & 0x7FFF_FFFF_FFFF_FFFF, to: SIMD8<Double>.self)
            m = m.replacing(with: absolute, where: absolute .> m)
            zeroLanes &+= SIMD8<Int32>(repeating: 0).replacing(with: 1, where: rf .== SIMD8<Float>(repeating: 0))
            i += 8
        }
        maxAbs = m
        return Int(zeroLanes.wrappedSum())
    }

    /// Reduces the lanes and adds the last `count` (< 8) values.
    func finish(tail w: UnsafePointer<Float>, _ r: UnsafePointer<Float>, count: Int) -> MetricSums {
        var sums = MetricSums()
        sums.ww = ww.sum(); sums.rr = rr.sum(); sums.wr = wr.sum(); sums.dd = dd.sum()
        sums.maxAbs = maxAbs.max()
        sums.zeros = zeros
        for i in 0..<count {
            let wd = Double(w[i]), rd = Double(r[i]), d = wd - rd
            sums.ww += wd * wd; sums.rr += rd * rd; sums.wr += wd * rd; sums.dd += d * d
            sums.maxAbs = max(sums.maxAbs, abs(d))
            if r[i] == 0 { sums.zeros += 1 }
        }
        return sums
    }
}
