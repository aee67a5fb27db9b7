import TensorCore

/// The vectorized integer quantizer: the codes, scales and zero points of `referenceQuantize`, bit for
/// bit, 16 lanes at a time, with groups (or, per tensor, blocks) split over threads.
///
/// Why the output is the same:
/// - range: the group's minimum and maximum (symmetric: the largest `|x|`, the sign bit cleared) come
///   from compare/select (`ValueRange`). Min and max do not depend on the order of the comparisons,
///   and the sign of a zero extreme does not change the grid. MSE and percentile clipping search the
///   group with the scalar `chooseRange`.
/// - grid: the scalar `grid(lo:hi:)` and FP16 rounding of the scale, once per group.
/// - codes: `y = x / Δ` (IEEE division, as the reference), clamped to `[qmin − z, qmax − z]` before
///   rounding (rounding is monotonic and keeps integers, so clamping and rounding commute for integer
///   bounds), then rounded to nearest even by adding `1.5·2^23`: for `|y| < 2^22` (here `|y| ≤ 255`)
///   the sum's low bits are `rne(y)` in two's complement, and `z` is added to them as an integer.
///
/// Only the spellings that compile to vector code are used: loads of raw bytes, `replace(with:where:)`,
/// `&`, `&+` and bit casts (`pointwiseMin/Max`, `.rounded()`, `.clamped` and float-to-int vector
/// conversions run per lane, about 10x slower). Where the reference traps (`|x / Δ| ≥ 2^31`, which
/// percentile or MSE clipping can give next to outliers), this path gives the clamped code.
extension IntegerQuantizer {
    /// Quantizes `shape.elementCount` F32 values given as little-endian bytes (any alignment, e.g. a
    /// memory map); nil when one of them is NaN or ±Inf. Equals `referenceQuantize` at any `threadCount`.
    public func quantize(float32 bytes: UnsafeRawBufferPointer, shape: Shape, threadCount: Int = 1) -> QuantizedTensor? {
        precondition(bytes.count == 4 * shape.elementCount && check(shape: shape) == nil, "quantize: shape does not fit")
        switch vectorQuantize(bytes, shape: shape, halfScales: true, threadCount: threadCount) {
        case .quantized(let q): return q
        case .nonFinite: return nil
        case .scaleNotHalf:
            // As the reference: when one scale is not a normal FP16 number, every scale stays F32.
            guard case .quantized(let q) = vectorQuantize(bytes, shape: shape, halfScales: false, threadCount: threadCount) else {
                preconditionFailure("quantize: F32 scales cannot fail")
            }
            return q
        }
    }

    private enum Outcome {
        case quantized(QuantizedTensor)
        case nonFinite
        case scaleNotHalf
    }

    /// What happened to one group.
    private enum GroupStatus: UInt8 {
        case done = 0, nonFinite, scaleNotHalf
    }

    private func vectorQuantize(_ bytes: UnsafeRawBufferPointer, shape: Shape, halfScales: Bool, threadCount: Int) -> Outcome {
        let n = shape.elementCount
        let groupLength: Int, groupCount: Int
        switch granularity {
        case .tensor: (groupLength, groupCount) = (n, 1)
        case .channel:
            let c = shape.columnCount
            (groupLength, groupCount) = (c, c == 0 ? 0 : n / c)
        case .group(let g): (groupLength, groupCount) = (g, n / g)
        }
        var scales = [Float](repeating: 1, count: groupCount)
        var zeros = [Int32](repeating: 0, count: groupCount)
        var status = [GroupStatus](repeating: .done, count: groupCount)
        let codes = [UInt8](unsafeUninitializedCapacity: n) { codes, initialized in
            scales.withUnsafeMutableBufferPointer { scales in
                zeros.withUnsafeMutableBufferPointer { zeros in
                    status.withUnsafeMutableBufferPointer { status in
                        // Placeholders for empty tensors are never read or written (count 0).
                        let source = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 16)!
                        let target = codes.baseAddress ?? UnsafeMutablePointer(bitPattern: 16)!
                        if case .tensor = granularity {
                            status[0] = quantizeTensor(source, count: n, into: target, halfScales: halfScales, threadCount: threadCount,
                                                       scale: &scales[0], zero: &zeros[0])
                            return
                        }
                        ParallelLoop.forEachRange(count: groupCount, threadCount: threadCount) { range in
                            for g in range {
                                status[g] = quantizeGroup(source + 4 * g * groupLength, count: groupLength, into: target + g * groupLength,
                                                          halfScales: halfScales, scale: &scales[g], zero: &zeros[g])
                            }
                        }
                    }
                }
            }
            initialized = n   // UInt8: every byte is written unless the result is discarded below
        }
        if status.contains(.nonFinite) { return .nonFinite }
        if status.contains(.scaleNotHalf) { return .scaleNotHalf }
        return .quantized(QuantizedTensor(shape: shape, bits: bits, symmetric: symmetric, granularity: granularity,
                                          codes: codes, scales: scales, zeroPoints: zeros))
    }

    /// Range, grid and codes of one group of `count` values at `source`.
    @inline(__always)
    private func quantizeGroup(_ source: UnsafeRawPointer, count: Int, into codes: UnsafeMutablePointer<UInt8>,
                               halfScales: Bool, scale: inout Float, zero: inout Int32) -> GroupStatus {
        let extremes = ValueRange(source, count: count, symmetric: symmetric)
        guard extremes.isFinite else { return .nonFinite }
        let (lo, hi) = clippingRange(source, count: count, extremes: extremes)
        switch groupGrid(lo: lo, hi: hi, halfScales: halfScales) {
        case .scaleNotHalf:
            return .scaleNotHalf
        case .allZero(let z):
            (scale, zero) = (1, z)
            codes.initialize(repeating: UInt8(z), count: count)
        case .grid(let grid):
            (scale, zero) = (grid.scale, grid.zero)
            encode(source, 0..<count, into: codes, grid: grid)
        }
        return .done
    }

    /// One group spanning the whole tensor: the range and the codes are computed in blocks on
    /// `threadCount` threads (min and max are exact whatever the split).
    private func quantizeTensor(_ source: UnsafeRawPointer, count: Int, into codes: UnsafeMutablePointer<UInt8>, halfScales: Bool,
                                threadCount: Int, scale: inout Float, zero: inout Int32) -> GroupStatus {
        let blockLength = 1 << 16
        let blocks = (count + blockLength - 1) / blockLength
        var partial = [ValueRange](repeating: ValueRange(lo: 0, hi: 0, isFinite: true), count: blocks)
        partial.withUnsafeMutableBufferPointer { partial in
            ParallelLoop.forEachRange(count: blocks, threadCount: threadCount) { range in
                for b in range {
                    let start = b * blockLength
                    partial[b] = ValueRange(source + 4 * start, count: min(blockLength, count - start), symmetric: symmetric)
                }
            }
        }
        var extremes = partial.first ?? ValueRange(lo: 0, hi: 0, isFinite: true)
        for p in partial.dropFirst() { extremes.merge(p) }
        guard extremes.isFinite else { return .nonFinite }
        let (lo, hi) = clippingRange(source, count: count, extremes: extremes)
        switch groupGrid(lo: lo, hi: hi, halfScales: halfScales) {
        case .scaleNotHalf:
            return .scaleNotHalf
        case .allZero(let z):
            (scale, zero) = (1, z)
            codes.initialize(repeating: UInt8(z), count: count)
        case .grid(let grid):
            (scale, zero) = (grid.scale, grid.zero)
            ParallelLoop.forEachRange(count: blocks, threadCount: threadCount) { range in
                encode(source, (range.lowerBound * blockLength)..<min(count, range.upperBound * blockLength), into: codes, grid: grid)
            }
        }
        return .done
    }

    /// The clipping range: the extremes for min/max, else the scalar search of `chooseRange`.
    @inline(__always)
    private func clippingRange(_ source: UnsafeRawPointer, count: Int, extremes: ValueRange) -> (lo: Float, hi: Float) {
        if case .minMax = clipping { return (extremes.lo, extremes.hi) }
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: count) { scratch in
            if count > 0 { UnsafeMutableRawPointer(scratch.baseAddress!).copyMemory(from: source, byteCount: 4 * count) }
            return chooseRange(UnsafeBufferPointer(scratch))
        }
    }

    /// The grid of a group as stored: `.allZero` for an empty range (scale 1 and the symmetric offset
    /// or 0, so the codes decode to 0); `.scaleNotHalf` when FP16 scales are asked for and this scale
    /// is not a normal FP16 number.
    private enum GroupGrid {
        case allZero(zero: Int32)
        case scaleNotHalf
        case grid(Grid)
    }

    /// The grid of the clipping range `[lo, hi]` (the reference's `grid(lo:hi:)` and FP16 rounding).
    @inline(__always)
    private func groupGrid(lo: Float, hi: Float, halfScales: Bool) -> GroupGrid {
        guard var grid = grid(lo: lo, hi: hi) else { return .allZero(zero: symmetric ? Int32(1 << (bits - 1)) : 0) }
        if halfScales {
            guard let rounded = Self.halfRounded(grid.scale) else { return .scaleNotHalf }
            grid.scale = rounded
        }
        return .grid(grid)
    }

    /// Writes the codes of the values `range` (element indices from `source`) on `grid`.
    @inline(__always)
    private func encode(_ source: UnsafeRawPointer, _ range: Range<Int>, into codes: UnsafeMutablePointer<UInt8>, grid: Grid) {
        if grid.scale == 0 {
            // Only a range of a few subnormal steps gives Δ = 0; keep the reference's arithmetic.
            for i in range { codes[i] = encode(source.loadUnaligned(fromByteOffset: 4 * i, as: Float.self), grid) }
            return
        }
        EncodeKernel(grid).run(source + 4 * range.lowerBound, count: range.count, into: codes + range.lowerBound)
    }
}

/// The smallest and largest value of a span of F32 values (symmetric: `±max|x|`), and whether all are finite.
struct ValueRange {
    var lo: Float
    var hi: Float
    var isFinite: Bool

    /// The range of both spans together.
    mutating func merge(_ other: ValueRange) {
        if other.lo < lo { lo = other.lo }
        if other.hi > hi { hi = other.hi }
        isFinite = isFinite && other.isFinite
    }
}

extension ValueRange {
    /// Scans `count` values at `source` (unaligned little-endian F32). An empty span gives `(0, 0)`.
    ///
    /// Per vector: `|x|` by clearing the sign bit, the extremes by `x > m ? x : m` (one maxps or
    /// minps: a NaN never replaces `m`), and a finiteness check `Σ (x − x)`, which is 0 unless some
    /// `x` is ±Inf or NaN. The symmetric grid only needs `max |x|`. Lanes are folded by halves.
    @inline(__always)
    init(_ source: UnsafeRawPointer, count: Int, symmetric: Bool) {
        guard count > 0 else {
            self.init(lo: 0, hi: 0, isFinite: true)
            return
        }
        var check = SIMD16<Float>()
        var lo = SIMD16<Float>(repeating: .infinity), hi = SIMD16<Float>(repeating: symmetric ? 0 : -.infinity)
        var i = 0
        if symmetric {
            let absMask = SIMD16<UInt32>(repeating: 0x7FFF_FFFF)
            var hi1 = hi, check1 = check
            while i + 32 <= count {
                let a0 = unsafeBitCast(source.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<UInt32>.self) & absMask, to: SIMD16<Float>.self)
                let a1 = unsafeBitCast(source.loadUnaligned(fromByteOffset: 4 * i + 64, as: SIMD16<UInt32>.self) & absMask, to: SIMD16<Float>.self)
                hi = hi.replacing(with: a0, where: a0 .> hi)
                hi1 = hi1.replacing(with: a1, where: a1 .> hi1)
                check += a0 - a0
                check1 += a1 - a1
                i += 32
            }
            if i + 16 <= count {
                let a = unsafeBitCast(source.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<UInt32>.self) & absMask, to: SIMD16<Float>.self)
                hi = hi.replacing(with: a, where: a .> hi)
                check += a - a
                i += 16
            }
            hi = hi.replacing(with: hi1, where: hi1 .> hi)
            check += check1
        } else {
            var lo1 = lo, hi1 = hi, check1 = check
            while i + 32 <= count {
                let x0 = source.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
                let x1 = source.loadUnaligned(fromByteOffset: 4 * i + 64, as: SIMD16<Float>.self)
                lo = lo.replacing(with: x0, where: x0 .< lo)
                lo1 = lo1.replacing(with: x1, where: x1 .< lo1)
                hi = hi.replacing(with: x0, where: x0 .> hi)
                hi1 = hi1.replacing(with: x1, where: x1 .> hi1)
                check += x0 - x0
                check1 += x1 - x1
                i += 32
            }
            if i + 16 <= count {
                let x = source.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
                lo = lo.replacing(with: x, where: x .< lo)
                hi = hi.replacing(with: x, where: x .> hi)
                check += x - x
                i += 16
            }
            lo = lo.replacing(with: lo1, where: lo1 .< lo)
            hi = hi.replacing(with: hi1, where: hi1 .> hi)
            check += check1
        }
        var low = Self.smallestLane(lo), high = Self.largestLane(hi), sum = Self.laneSum(check)
        while i < count {
            let x = source.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
            let v = symmetric ? abs(x) : x
            if v < low { low = v }
            if v > high { high = v }
            sum += x - x
            i += 1
        }
        self.init(lo: symmetric ? -high : low, hi: high, isFinite: sum == 0)
    }

    /// The largest lane (lanes folded by halves; no lane is NaN when the span is finite).
    @inline(__always)
    static func largestLane(_ v: SIMD16<Float>) -> Float {
        var a = v.lowHalf
        a = a.replacing(with: v.highHalf, where: v.highHalf .> a)
        var b = a.lowHalf
        b = b.replacing(with: a.highHalf, where: a.highHalf .> b)
        return max(max(b[0], b[1]), max(b[2], b[3]))
    }

    /// The smallest lane.
    @inline(__always)
    static func smallestLane(_ v: SIMD16<Float>) -> Float {
        var a = v.lowHalf
        a = a.replacing(with: v.highHalf, where: v.highHalf .< a)
        var b = a.lowHalf
        b = b.replacing(with: a.highHalf, where: a.highHalf .< b)
        return min(min(b[0], b[1]), min(b[2], b[3]))
    }

    /// The sum of the lanes (only compared with 0: NaN stays NaN in any order).
    @inline(__always)
    static func laneSum(_ v: SIMD16<Float>) -> Float {
        let a = v.lowHalf + v.highHalf
        let b = a.lowHalf + a.highHalf
        return (b[0] + b[1]) + (b[2] + b[3])
    }
}

/// Codes of one grid with `Δ > 0`: `q = rne(clamp(x / Δ, qmin − z, qmax − z)) + z`, 16 lanes at a time.
struct EncodeKernel {
    /// `1.5·2^23`: adding it rounds `|y| < 2^22` to an integer, ties to even, kept in the low bits.
    static let magic: Float = 12_582_912
    let scale: Float
    let lowest: Float
    let highest: Float
    /// `z − bits(1.5·2^23)`, added to the sum's bits to give `rne(y) + z`.
    let offset: UInt32

    init(_ grid: IntegerQuantizer.Grid) {
        scale = grid.scale
        lowest = Float(grid.qmin - grid.zero)
        highest = Float(grid.qmax - grid.zero)
        offset = UInt32(bitPattern: grid.zero) &- Self.magic.bitPattern
    }

    /// Encodes `count` F32 values at `source` (unaligned) into `codes`.
    @inline(__always)
    func run(_ source: UnsafeRawPointer, count: Int, into codes: UnsafeMutablePointer<UInt8>) {
        let s = SIMD16<Float>(repeating: scale)
        let lo = SIMD16<Float>(repeating: lowest), hi = SIMD16<Float>(repeating: highest)
        let m = SIMD16<Float>(repeating: Self.magic)
        let z = SIMD16<UInt32>(repeating: offset)
        let target = UnsafeMutableRawPointer(codes)
        var i = 0
        while i + 32 <= count {
            var y0 = source.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) / s
            var y1 = source.loadUnaligned(fromByteOffset: 4 * i + 64, as: SIMD16<Float>.self) / s
            // `y > lo ? y : lo` and `y < hi ? y : hi` compile to maxps/minps (no NaN can occur here).
            y0 = lo.replacing(with: y0, where: y0 .> lo)
            y1 = lo.replacing(with: y1, where: y1 .> lo)
            y0 = hi.replacing(with: y0, where: y0 .< hi)
            y1 = hi.replacing(with: y1, where: y1 .< hi)
            let q0 = unsafeBitCast(y0 + m, to: SIMD16<UInt32>.self) &+ z
            let q1 = unsafeBitCast(y1 + m, to: SIMD16<UInt32>.self) &+ z
            target.storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: q0), toByteOffset: i, as: SIMD16<UInt8>.self)
            target.storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: q1), toByteOffset: i + 16, as: SIMD16<UInt8>.self)
            i += 32
        }
        while i < count {
            var y = source.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) / scale
            if y < lowest { y = lowest }
            if y > highest { y = highest }
            codes[i] = UInt8(truncatingIfNeeded: (y + Self.magic).bitPattern &+ offset)
            i += 1
        }
    }
}
