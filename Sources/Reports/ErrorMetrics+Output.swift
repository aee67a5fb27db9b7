import TensorCore

/// Output-space error: how much a compressed linear layer changes its outputs on calibration data.
///
/// For a weight `W` `[out, in]` (row-major, row = output channel), its reconstruction `W'`,
/// `ΔW = W − W'` and the calibration Gram matrix `H = mean(x xᵀ)` `[in, in]`:
///
///     outputRelativeError = tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) = Σ_r ΔW_r H ΔW_rᵀ / Σ_r W_r H W_rᵀ
///
/// which is `||ΔW X||_F² / ||W X||_F²` over the calibration inputs `X` (algorithms.md §0). This is
/// DESIGN.md's `output_relative_error` and, unlike `relativeError`, it is a ratio of *squared* norms:
/// with `H = I` it equals `relativeError²`. Conventions: `0/0 = 0`, `x/0 = +∞` for x > 0.
extension ErrorMetrics {
    /// `tr(ΔW H ΔWᵀ) / tr(W H Wᵀ)` with the full Gram matrix `gram` (`columns x columns`, row-major).
    ///
    /// `H` need not be symmetric. The products `[W; ΔW]·H` run through `BLAS.gemm` (F32) in blocks of
    /// rows, and the traces are summed in `Double`. Cost: `4·rows·columns²` flops; extra memory: two
    /// blocks of about 2²⁰ floats each, whatever the tensor size.
    public static func outputRelativeError(
        original: UnsafeBufferPointer<Float>, reconstruction: UnsafeBufferPointer<Float>,
        rows: Int, columns: Int, gram: UnsafeBufferPointer<Float>
    ) throws(MetricsError) -> Double {
        try outputRelativeError(original: original, reconstruction: reconstruction, rows: rows, columns: columns,
                                gram: gram, blockElementCount: 1 << 20)
    }

    /// `outputRelativeError` with blocks of about `blockElementCount` weights (at least 32 rows).
    static func outputRelativeError(
        original: UnsafeBufferPointer<Float>, reconstruction: UnsafeBufferPointer<Float>,
        rows: Int, columns: Int, gram: UnsafeBufferPointer<Float>, blockElementCount: Int
    ) throws(MetricsError) -> Double {
        try checkSizes(original, reconstruction, rows: rows, columns: columns)
        let (gramCount, overflow) = columns.multipliedReportingOverflow(by: columns)
        guard !overflow, gram.count == gramCount else { throw .gramSizeMismatch(columns: columns, gramCount: gram.count) }
        guard rows > 0, columns > 0, let w = original.baseAddress, let r = reconstruction.baseAddress,
              let h = gram.baseAddress else { return 0 }

        let blockRows = min(rows, max(32, blockElementCount / columns))
        let blockCount = blockRows * columns
        var signal = 0.0, noise = 0.0
        var stacked = [Float](repeating: 0, count: 2 * blockCount)
        var product = [Float](repeating: 0, count: 2 * blockCount)
        stacked.withUnsafeMutableBufferPointer { stackedBuffer in
            product.withUnsafeMutableBufferPointer { productBuffer in
                let s = stackedBuffer.baseAddress!, p = productBuffer.baseAddress!
                var start = 0
                while start < rows {
                    let b = min(blockRows, rows - start)
                    let n = b * columns, offset = start * columns
                    // Rows 0..<b hold W, rows b..<2b hold ΔW = W − W'.
                    s.update(from: w + offset, count: n)
                    for i in 0..<n { s[n + i] = w[offset + i] - r[offset + i] }
                    BLAS.gemm(.none, .none, m: 2 * b, n: columns, k: columns,
                              a: s, lda: columns, b: h, ldb: columns, c: p, ldc: columns)
                    signal += dotDouble(p, s, count: n)
                    noise += dotDouble(p + n, s + n, count: n)
                    start += b
                }
            }
        }
        return ratio(noise, signal)
    }

    /// `outputRelativeError` for arrays.
    public static func outputRelativeError(
        original: [Float], reconstruction: [Float], rows: Int, columns: Int, gram: [Float]
    ) throws(MetricsError) -> Double {
        let result = original.withUnsafeBufferPointer { w in
            reconstruction.withUnsafeBufferPointer { r in
                gram.withUnsafeBufferPointer { h in
                    Result { () throws(MetricsError) in
                        try outputRelativeError(original: w, reconstruction: r, rows: rows, columns: columns, gram: h)
                    }
                }
            }
        }
        return try result.get()
    }

    /// The diagonal approximation, from `act_sq = diag(H)` (`columns` values, llama.cpp's imatrix):
    /// `Σ_{r,j} act_sq_j ΔW_rj² / Σ_{r,j} act_sq_j W_rj²`. One pass, no BLAS.
    public static func diagonalOutputRelativeError(
        original: UnsafeBufferPointer<Float>, reconstruction: UnsafeBufferPointer<Float>,
        rows: Int, columns: Int, activationSquares: UnsafeBufferPointer<Float>
    ) throws(MetricsError) -> Double {
        try checkSizes(original, reconstruction, rows: rows, columns: columns)
        guard activationSquares.count == columns else {
            throw .diagonalSizeMismatch(columns: columns, diagonalCount: activationSquares.count)
        }
        guard rows > 0, columns > 0, let w = original.baseAddress, let r = reconstruction.baseAddress,
              let d = activationSquares.baseAddress else { return 0 }
        var signal = 0.0, noise = 0.0
        for row in 0..<rows {
            let offset = row * columns
            var rowSignal = 0.0, rowNoise = 0.0
            for j in 0..<columns {
                let a = Double(d[j]), wv = Double(w[offset + j]), e = wv - Double(r[offset + j])
                rowSignal += a * wv * wv
                rowNoise += a * e * e
            }
            signal += rowSignal
            noise += rowNoise
        }
        return ratio(noise, signal)
    }

    /// `diagonalOutputRelativeError` for arrays.
    public static func diagonalOutputRelativeError(
        original: [Float], reconstruction: [Float], rows: Int, columns: Int, activationSquares: [Float]
    ) throws(MetricsError) -> Double {
        let result = original.withUnsafeBufferPointer { w in
            reconstruction.withUnsafeBufferPointer { r in
                activationSquares.withUnsafeBufferPointer { d in
                    Result { () throws(MetricsError) in
                        try diagonalOutputRelativeError(original: w, reconstruction: r, rows: rows, columns: columns,
                                                        activationSquares: d)
                    }
                }
            }
        }
        return try result.get()
    }

    private static func checkSizes(
        _ original: UnsafeBufferPointer<Float>, _ reconstruction: UnsafeBufferPointer<Float>, rows: Int, columns: Int
    ) throws(MetricsError) {
        guard original.count == reconstruction.count else {
            throw .countMismatch(original: original.count, reconstruction: reconstruction.count)
        }
        let (n, overflow) = rows.multipliedReportingOverflow(by: columns)
        guard rows >= 0, columns >= 0, !overflow, n == original.count else {
            throw .matrixSizeMismatch(rows: rows, columns: columns, count: original.count)
        }
    }

    /// `Σ a_i b_i` in `Double`, 8 lanes at a time.
    private static func dotDouble(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Double {
        var lanes = SIMD8<Double>()
        let vectorEnd = count & ~7
        var i = 0
        while i < vectorEnd {
            let x = SIMD8<Double>(UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self))
            let y = SIMD8<Double>(UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self))
            lanes += x * y   // not addProduct: that is a libm fma call per lane without hardware FMA
            i += 8
        }
        var total = lanes.sum()
        for j in vectorEnd..<count { total += Double(a[j]) * Double(b[j]) }
        return total
    }
}
