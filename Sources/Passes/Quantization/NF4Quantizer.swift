import TensorCore

/// A tensor quantized to 4-bit NormalFloat (NF4) codes, bitsandbytes layout (algorithms.md §1.7).
///
/// The flattened tensor is split into blocks of `blockSize` values; block `b` has a scale `absmax_b`
/// and element `i` dequantizes to `x̂_i = NF4[q_i] · absmax_{⌊i/blockSize⌋}` with `NF4` the 16-value
/// table `NF4Quantizer.codeValues`. Codes are packed two per byte, the even-index element in the
/// high nibble: `packedCodes[k] = q_{2k} << 4 | q_{2k+1}`.
///
/// With double quantization the scales themselves are stored as 8-bit codes of the bitsandbytes
/// signed dynamic map `D` (`NF4Quantizer.dynamicMap`) in blocks of 256 scales:
/// `absmax_b = D[qabsmax_b] · absmax2_{⌊b/256⌋} + offset`.
public struct NF4Tensor: Sendable, Equatable {
    /// How the per-block scales are stored.
    public enum Scales: Sendable, Equatable {
        /// One FP32 `absmax` per block.
        case plain([Float])
        /// Double quantization: one 8-bit dynamic-map code per block, one FP32 second-level absmax per
        /// `secondLevelBlockSize` blocks, and the FP32 offset (mean of the first-level absmax).
        case doubleQuantized(codes: [UInt8], secondLevelAbsmax: [Float], offset: Float, secondLevelBlockSize: Int)
    }

    public let shape: Shape
    public let blockSize: Int
    /// Two 4-bit codes per byte, element 2k in the high nibble, 2k+1 in the low nibble.
    public let packedCodes: [UInt8]
    public let scales: Scales

    public init(shape: Shape, blockSize: Int, packedCodes: [UInt8], scales: Scales) {
        let n = shape.elementCount
        precondition(blockSize > 0 && n % blockSize == 0 && n % 2 == 0 && packedCodes.count == n / 2,
                     "inconsistent NF4 tensor")
        switch scales {
        case .plain(let a):
            precondition(a.count == n / blockSize, "inconsistent NF4 scales")
        case .doubleQuantized(let codes, let second, _, let block2):
            precondition(block2 > 0 && codes.count == n / blockSize
                         && second.count == (codes.count + block2 - 1) / block2, "inconsistent NF4 scales")
        }
        self.shape = shape
        self.blockSize = blockSize
        self.packedCodes = packedCodes
        self.scales = scales
    }

    public var blockCount: Int { shape.elementCount / blockSize }

    /// The 4-bit code (0 ..< 16) of element `i`.
    @inlinable
    public func code(at i: Int) -> UInt8 {
        let byte = packedCodes[i >> 1]
        return i & 1 == 0 ? byte >> 4 : byte & 0x0F
    }

    /// The per-block scales as used by `dequantized()` (reconstructed when double-quantized).
    public func absmax() -> [Float] {
        switch scales {
        case .plain(let a):
            return a
        case .doubleQuantized(let codes, let second, let offset, let block2):
            let map = NF4Quantizer.dynamicMap
            return codes.indices.map { b in map[Int(codes[b])] * second[b / block2] + offset }
        }
    }

    /// The dequantized values, row-major (`x̂_i = NF4[q_i] · absmax_b`).
    public func dequantized() -> [Float] {
        let a = absmax()
        let table = NF4Quantizer.codeValues
        var out = [Float](repeating: 0, count: shape.elementCount)
        for i in out.indices {
            out[i] = table[Int(code(at: i))] * a[i / blockSize]
        }
        return out
    }

    /// Storage per weight: 4 + 32/blockSize without double quantization (4.5 at 64);
    /// 4 + 8/blockSize + 32/(blockSize·256) plus the 32-bit offset spread over the tensor with it
    /// (≈ 4.127 at 64). The constant code tables are not counted. 0 for an empty tensor.
    public var bitsPerWeight: Double {
        let n = shape.elementCount
        guard n > 0 else { return 0 }
        let bits: Int
        switch scales {
        case .plain(let a): bits = 4 * n + 32 * a.count
        case .doubleQuantized(let codes, let second, _, _): bits = 4 * n + 8 * codes.count + 32 * second.count + 32
        }
        return Double(bits) / Double(n)
    }
}

extension NF4Tensor {
    /// The same codes and scales as a format-neutral `QuantizedTensor` (codebook scheme, groups of
    /// `blockSize` along rows; requires rows whose length is a multiple of `blockSize`, so that the
    /// flattened blocks are row groups). Double-quantized scales are kept as `nestedScales`.
    public var quantizedTensor: QuantizedTensor {
        precondition(shape.columnCount % blockSize == 0, "NF4 blocks must not straddle rows")
        let codes = (0..<shape.elementCount).map { code(at: $0) }
        let a = absmax()
        var nested: QuantizedTensor.NestedScales?
        if case .doubleQuantized(let c, let second, let offset, let block2) = scales {
            nested = QuantizedTensor.NestedScales(codes: c, secondLevelScales: second, offset: offset, blockSize: block2,
                                                  map: NF4Quantizer.dynamicMap)
        }
        return QuantizedTensor(shape: shape, scheme: .codebook(NF4Quantizer.codeValues), bits: 4, symmetric: true,
                               granularity: .group(blockSize), codes: codes, scales: a,
                               zeroPoints: [Int32](repeating: 0, count: a.count), nestedScales: nested)
    }
}

/// NF4 blockwise quantization with optional double quantization, following bitsandbytes
/// `quantize_4bit(quant_type="nf4")` (algorithms.md §1.7).
///
/// Per block of `blockSize` consecutive values (row-major, flattened):
/// - `absmax = max |x|` (FP32), `y = x · (1/absmax) ∈ [−1, 1]` (bitsandbytes multiplies by the reciprocal);
/// - `q = #{k : y > m_k}` with `m_k = (NF4[k] + NF4[k+1]) / 2` the 15 midpoints, i.e. the nearest code,
///   a value exactly on a midpoint going to the lower code (as in `dQuantizeNF4`);
/// - `x̂ = NF4[q] · absmax`, so `|x − x̂| ≤ absmax · max(NF4[q] − NF4[q−1], NF4[q+1] − NF4[q]) / 2`.
/// `NF4[7] = 0` exactly, so zeros stay exactly zero; an all-zero block has `absmax = 0` and codes 7.
///
/// Double quantization (`compress_statistics=True`): `offset = mean(absmax)` (accumulated in Double,
/// rounded to FP32), `c_b = absmax_b − offset`, and per block of 256 scales `absmax2 = max |c|`,
/// `qabsmax_b` = the nearest entry of the signed dynamic map `D` to `c_b · (1/absmax2)` (same midpoint
/// rule); `absmax_b ≈ D[qabsmax_b] · absmax2 + offset`. The NF4 codes are computed from the exact FP32
/// absmax, as in bitsandbytes (the scales are compressed afterwards).
public struct NF4Quantizer: Sendable, Equatable {
    /// The 16 NF4 code values exactly as bitsandbytes stores them (index 0 … 15).
    public static let codeValues: [Float] = [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
        -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
        0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ]

    /// The index of the exact zero code.
    public static let zeroCode: UInt8 = 7

    /// Decision thresholds: the midpoints between adjacent NF4 codes (15 values, FP32).
    public static let codeThresholds: [Float] = midpoints(codeValues)

    /// bitsandbytes `create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)`, sorted
    /// (256 FP32 values from −0.99296875 to 1, exact 0 at index 127).
    ///
    /// For exponent `e = 0 … 6`: `2^e + 1` boundaries `linspace(0.1, 1, 2^e + 1)` in FP32, their
    /// `2^e` consecutive means `(b_j + b_{j+1}) / 2`, scaled by `±FP32(10^(e−6))`; plus 0 and 1.
    /// The FP32 `linspace` is reproduced the way PyTorch's CPU kernel computes it: step
    /// `(end − start)/(n − 1)`, element `i < n/2` is `fma(step, i, start)`, the others
    /// `fma(−step, n − 1 − i, end)`. This reproduces the published bitsandbytes table bit for bit.
    public static let dynamicMap: [Float] = makeDynamicMap()

    /// Midpoints between adjacent dynamic-map entries (255 values).
    public static let dynamicThresholds: [Float] = midpoints(dynamicMap)

    /// Scales per second-level block in double quantization (bitsandbytes uses 256).
    public static let secondLevelBlockSize = 256

    public let blockSize: Int
    public let doubleQuantization: Bool

    public init(blockSize: Int = 64, doubleQuantization: Bool = false) {
        precondition(blockSize > 0 && blockSize % 2 == 0, "blockSize must be a positive even number")
        self.blockSize = blockSize
        self.doubleQuantization = doubleQuantization
    }

    /// Why a tensor does not fit the scheme (checked before any weight is read).
    public func check(shape: Shape) -> String? {
        guard shape.elementCount % blockSize == 0 else {
            return "element count \(shape.elementCount) is not a multiple of the NF4 block size \(blockSize)"
        }
        return nil
    }

    /// Quantizes row-major `values` of `shape`. Values must be finite (the caller checks).
    public func quantize(_ values: [Float], shape: Shape) -> NF4Tensor {
        precondition(values.count == shape.elementCount && check(shape: shape) == nil, "quantize: shape does not fit")
        let n = values.count
        let blocks = n / blockSize
        var absmax = [Float](repeating: 0, count: blocks)
        var packed = [UInt8](repeating: 0, count: n / 2)
        let thresholds = Self.codeThresholds
        for b in 0..<blocks {
            let start = b * blockSize
            var m: Float = 0
            for i in start..<(start + blockSize) {
                precondition(values[i].isFinite, "NF4Quantizer: non-finite value")
                m = max(m, abs(values[i]))
            }
            absmax[b] = m
            let inverse: Float = m > 0 ? 1 / m : 0
            for i in stride(from: start, to: start + blockSize, by: 2) {
                let hi = Self.index(values[i] * inverse, thresholds)
                let lo = Self.index(values[i + 1] * inverse, thresholds)
                packed[i >> 1] = hi << 4 | lo
            }
        }
        let scales: NF4Tensor.Scales = doubleQuantization ? Self.compress(absmax) : .plain(absmax)
        return NF4Tensor(shape: shape, blockSize: blockSize, packedCodes: packed, scales: scales)
    }

    /// Double quantization of the first-level scales.
    static func compress(_ absmax: [Float]) -> NF4Tensor.Scales {
        let block2 = secondLevelBlockSize
        var sum = 0.0
        for a in absmax { sum += Double(a) }
        let offset = absmax.isEmpty ? 0 : Float(sum / Double(absmax.count))
        let centered = absmax.map { $0 - offset }
        var codes = [UInt8](repeating: 0, count: absmax.count)
        var second = [Float]()
        second.reserveCapacity((absmax.count + block2 - 1) / block2)
        let thresholds = dynamicThresholds
        for start in stride(from: 0, to: centered.count, by: block2) {
            let end = min(start + block2, centered.count)
            var m: Float = 0
            for i in start..<end { m = max(m, abs(centered[i])) }
            second.append(m)
            let inverse: Float = m > 0 ? 1 / m : 0
            for i in start..<end { codes[i] = index(centered[i] * inverse, thresholds) }
        }
        return .doubleQuantized(codes: codes, secondLevelAbsmax: second, offset: offset, secondLevelBlockSize: block2)
    }

    /// The number of thresholds strictly below `y` (= the nearest code, ties to the lower one).
    @inline(__always)
    static func index(_ y: Float, _ thresholds: [Float]) -> UInt8 {
        var lo = 0, hi = thresholds.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if y > thresholds[mid] { lo = mid + 1 } else { hi = mid }
        }
        return UInt8(lo)
    }

    static func midpoints(_ table: [Float]) -> [Float] {
        (0..<(table.count - 1)).map { (table[$0] + table[$0 + 1]) * 0.5 }
    }

    /// PyTorch's FP32 CPU `linspace` (see `dynamicMap`).
    static func linspace(_ start: Float, _ end: Float, _ count: Int) -> [Float] {
        let step = (end - start) / Float(count - 1)
        let halfway = count / 2
        return (0..<count).map { i in
            i < halfway ? start.addingProduct(step, Float(i)) : end.addingProduct(-step, Float(count - 1 - i))
        }
    }

    static func makeDynamicMap() -> [Float] {
        var data: [Float] = []
        for e in 0..<7 {
            let boundaries = linspace(0.1, 1, (1 << e) + 1)
            let means = (0..<(1 << e)).map { (boundaries[$0] + boundaries[$0 + 1]) / 2 }
            let scale = Float(e == 6 ? 1.0 : Double("1e\(e - 6)")!)
            data += means.map { scale * $0 }
            data += means.map { -scale * $0 }
        }
        data.append(0)
        data.append(1)
        precondition(data.count == 256)
        return data.sorted()
    }
}
