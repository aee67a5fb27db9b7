import TensorCore

/// Uniform integer post-training quantization of one weight tensor (round to nearest, ties to even).
///
/// Per group of values x (a whole tensor, a row, or `n` consecutive columns of a row):
/// - symmetric, b bits: `Δ = a / (2^(b−1) − 1)` with `a` the clipping bound, codes
///   `q = clamp(rne(x/Δ), −(2^(b−1)−1), 2^(b−1)−1)` stored offset by `z = 2^(b−1)`;
/// - asymmetric: the range `[lo, hi]` is widened to contain 0, `Δ = (hi − lo) / (2^b − 1)`,
///   `z = clamp(rne(−lo/Δ), 0, 2^b − 1)`, `q = clamp(rne(x/Δ) + z, 0, 2^b − 1)`;
/// - `x̂ = Δ·(q − z)`. Zero is exact (`q = z`), so pruned weights stay exactly zero, and inside the
///   representable range `|x − x̂| ≤ Δ/2`.
/// Clipping: `minMax` (the group's extremes), `mse` (shrink the range by `p = 1 − i/grid`,
/// `i = 0 ..< maxShrink·grid`, keeping the `p` with the least squared error; `p = 1` is minMax, so
/// MSE is never worse) or `percentile(P)` (the P-th percentile of |x|, or of x and −x for the two ends).
/// Scales are rounded to FP16 when every scale of the tensor is a normal FP16 number (and the codes are
/// computed with the rounded scale, so the stored data is self-consistent); otherwise they stay F32.
public struct IntegerQuantizer: Sendable, Equatable {
    public enum Clipping: Sendable, Equatable {
        case minMax
        case mse(grid: Int, maxShrink: Double)
        case percentile(Double)

        /// GPTQ's defaults: grid 100, shrink down to 0.2 of the range.
        public static let defaultMSE = Clipping.mse(grid: 100, maxShrink: 0.8)
    }

    public let bits: Int
    public let symmetric: Bool
    public let granularity: QuantizedTensor.Granularity
    public let clipping: Clipping

    public init(bits: Int, symmetric: Bool, granularity: QuantizedTensor.Granularity, clipping: Clipping = .minMax) {
        precondition((2...8).contains(bits), "bits must be 2...8")
        self.bits = bits
        self.symmetric = symmetric
        self.granularity = granularity
        self.clipping = clipping
    }

    /// Why a tensor does not fit the scheme (checked before any weight is read).
    public func check(shape: Shape) -> String? {
        if case .group(let n) = granularity {
            guard n > 0 else { return "group size must be positive" }
            guard shape.columnCount % n == 0 else { return "row length \(shape.columnCount) is not a multiple of the group size \(n)" }
        }
        return nil
    }

    /// Quantizes row-major `values` of `shape`. Values must be finite (the caller checks).
    ///
    /// Runs the vectorized path (`quantize(float32:shape:threadCount:)`), whose output equals
    /// `referenceQuantize` bit for bit at any thread count.
    public func quantize(_ values: [Float], shape: Shape, threadCount: Int = 1) -> QuantizedTensor {
        precondition(values.count == shape.elementCount, "quantize: shape does not fit")
        guard let result = values.withUnsafeBytes({ quantize(float32: $0, shape: shape, threadCount: threadCount) }) else {
            preconditionFailure("quantize: values must be finite")
        }
        return result
    }

    /// The scalar reference of `quantize`: one group at a time, one value at a time. Kept as the
    /// definition the vectorized path is tested against (and for benchmarks).
    public func referenceQuantize(_ values: [Float], shape: Shape) -> QuantizedTensor {
        precondition(values.count == shape.elementCount && check(shape: shape) == nil, "quantize: shape does not fit")
        let groups = groupRanges(shape: shape)
        if let result = quantize(values, shape: shape, groups: groups, halfScales: true) { return result }
        return quantize(values, shape: shape, groups: groups, halfScales: false)!
    }

    private func groupRanges(shape: Shape) -> [Range<Int>] {
        let n = shape.elementCount
        switch granularity {
        case .tensor: return [0..<n]
        case .channel:
            let c = shape.columnCount
            return c == 0 ? [] : stride(from: 0, to: n, by: c).map { $0..<($0 + c) }
        case .group(let g): return stride(from: 0, to: n, by: g).map { $0..<($0 + g) }
        }
    }

    private func quantize(_ values: [Float], shape: Shape, groups: [Range<Int>], halfScales: Bool) -> QuantizedTensor? {
        var codes = [UInt8](repeating: 0, count: values.count)
        var scales = [Float](repeating: 1, count: groups.count)
        var zeros = [Int32](repeating: 0, count: groups.count)
        for (g, range) in groups.enumerated() {
            let slice = values[range]
            let (lo, hi) = chooseRange(slice)
            guard var grid = grid(lo: lo, hi: hi) else { continue }
            if halfScales {
                guard let rounded = Self.halfRounded(grid.scale) else { return nil }
                grid.scale = rounded
            }
            scales[g] = grid.scale
            zeros[g] = grid.zero
            for i in range { codes[i] = encode(values[i], grid) }
        }
        // All-zero groups keep scale 1 and the symmetric offset (or 0), so their codes decode to 0.
        for (g, range) in groups.enumerated() where zeros[g] == 0 && symmetric {
            zeros[g] = Int32(1 << (bits - 1))
            for i in range { codes[i] = UInt8(zeros[g]) }
        }
        return QuantizedTensor(shape: shape, bits: bits, symmetric: symmetric, granularity: granularity,
                               codes: codes, scales: scales, zeroPoints: zeros)
    }

    struct Grid {
        var scale: Float
        var zero: Int32
        let qmin: Int32
        let qmax: Int32
    }

    /// The grid for a clipping range, or nil when the range is empty (an all-zero group).
    func grid(lo: Float, hi: Float) -> Grid? {
        if symmetric {
            let a = max(abs(lo), abs(hi))
            guard a > 0 else { return nil }
            let levels = Float((1 << (bits - 1)) - 1)
            let z = Int32(1 << (bits - 1))
            // A range of a few subnormal steps gives Δ = 0: the group is stored as all zero (|error| < 2e-43).
            guard a / levels > 0 else { return nil }
            return Grid(scale: a / levels, zero: z, qmin: z - Int32(levels), qmax: z + Int32(levels))
        }
        let low = min(lo, 0), high = max(hi, 0)
        guard high > low else { return nil }
        let qmax = Int32((1 << bits) - 1)
        let scale = (high - low) / Float(qmax)
        guard scale > 0 else { return nil }
        let z = Int32(max(0, min(Float(qmax), (-low / scale).rounded(.toNearestOrEven))))
        return Grid(scale: scale, zero: z, qmin: 0, qmax: qmax)
    }

    /// `scale` rounded to the nearest FP16 value, or nil when that is not a normal FP16 number.
    @inline(__always)
    static func halfRounded(_ scale: Float) -> Float? {
        let rounded = HalfPrecision.float(halfBits: HalfPrecision.halfBits(scale))
        guard rounded.isNormal, Float16(rounded).isNormal else { return nil }
        return rounded
    }

    /// `scale` rounded to the nearest FP16 value, subnormals included, or nil when that is 0 or
    /// infinite (mixed-width tensors store every scale as F16, see `QuantizedTensor.columnBits`).
    @inline(__always)
    static func halfStorable(_ scale: Float) -> Float? {
        let rounded = HalfPrecision.float(halfBits: HalfPrecision.halfBits(scale))
        guard rounded > 0, rounded.isFinite else { return nil }
        return rounded
    }

    /// `clamp(rne(x/Δ) + z, qmin, qmax)`, computed as `rne(clamp(x/Δ, qmin − z, qmax − z)) + z` (the
    /// same value, since the bounds are integers) so that an outlier far outside a clipped range
    /// cannot overflow the integer conversion.
    @inline(__always)
    func encode(_ x: Float, _ grid: Grid) -> UInt8 {
        let y = min(max(x / grid.scale, Float(grid.qmin - grid.zero)), Float(grid.qmax - grid.zero))
        return UInt8(Int32(y.rounded(.toNearestOrEven)) + grid.zero)
    }

    /// The clipping range of one group.
    func chooseRange<Values: Collection<Float>>(_ x: Values) -> (lo: Float, hi: Float) {
        var lo = Float.infinity, hi = -Float.infinity
        for v in x { lo = min(lo, v); hi = max(hi, v) }
        if x.isEmpty { return (0, 0) }
        switch clipping {
        case .minMax:
            return (lo, hi)
        case .percentile(let p):
            if symmetric {
                let a = percentile(x.map { abs($0) }, p)
                return (-a, a)
            }
            return (-percentile(x.map { -$0 }, p), percentile(Array(x), p))
        case .mse(let gridCount, let maxShrink):
            var best = (lo: lo, hi: hi)
            var bestError = Double.infinity
            for i in 0..<max(1, Int(maxShrink * Double(gridCount))) {
                let p = Float(1 - Double(i) / Double(gridCount))
                let candidate = (lo: lo * p, hi: hi * p)
                guard let g = grid(lo: candidate.lo, hi: candidate.hi) else { return (lo, hi) }
                var error: Double = 0
                for v in x {
                    let d = Double(v - g.scale * Float(Int32(encode(v, g)) - g.zero))
                    error += d * d
                }
                if error < bestError { bestError = error; best = candidate }
            }
            return best
        }
    }

    /// The p-th percentile (0...100) by nearest rank.
    func percentile(_ values: [Float], _ p: Double) -> Float {
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }
}
