import TensorCore

/// GPTQ: integer quantization of a weight `W [rows, columns]` column by column, each column's
/// rounding error compensated on the columns not yet quantized, using the inputs' Gram matrix
/// `H = E[x xᵀ] [columns, columns]` (algorithms.md §2.1; Frantar et al. 2022).
///
/// With `U` the upper Cholesky factor of `(H + λ·mean(diag H)·I)⁻¹` (`H⁻¹ = Uᵀ U`), for each column
/// `j` in processing order: `q_j = quant(w_j)`, `err_j = (w_j − q_j) / U_jj`,
/// `W[:, j+1:] −= err_j ⊗ U[j, j+1:]`. Columns are processed in blocks of `blockSize`: inside a block
/// the updates are rank-1, and the rest of the matrix gets one GEMM per block (the same result).
/// - Grids: per channel, each row's grid comes from the original row (as GPTQ's `find_params` on
///   the whole row); with `group:N` and natural order, a group's grid is fitted on the current,
///   already-updated columns when its first column comes up ("dynamic groups"); with act-order and
///   groups, every group is fitted on the original weights first ("static groups"), so groups stay
///   contiguous in the natural column order and the format needs no `g_idx`.
/// - Act-order: columns are processed by decreasing `H_jj`; codes are stored in natural order.
/// - Dead inputs (`H_jj = 0`): `H_jj` is set to 1, so those columns are rounded to nearest without
///   spreading error (GPTQ zeroes them; we keep them).
/// - A damping that does not make the matrix positive definite is raised ×10, up to 4 times.
/// Scales are stored as FP16 when they are normal FP16 numbers (the codes use the stored scale).
public struct GPTQQuantizer: Sendable {
    public let grid: IntegerQuantizer
    public let blockSize: Int
    public let damping: Double
    public let actOrder: Bool

    public init(bits: Int, symmetric: Bool, granularity: QuantizedTensor.Granularity, blockSize: Int = 128,
                damping: Double = 0.01, actOrder: Bool = false) {
        grid = IntegerQuantizer(bits: bits, symmetric: symmetric, granularity: granularity)
        self.blockSize = blockSize
        self.damping = damping
        self.actOrder = actOrder
    }

    /// Quantizes `values` (row-major `[rows, columns]`, finite) with the Gram matrix `hessian`
    /// (row-major `[columns, columns]`, symmetric positive semi-definite).
    ///
    /// `columnBits` (channel granularity only) gives every column its own width, as `allocate.bits`
    /// plans them (BAQ): each row has one grid per width present, fitted on the row's original
    /// values in the columns of that width (as round to nearest does, see `QuantizedTensor.columnBits`);
    /// a width-0 column is quantized to 0 and its whole value passed on as error.
    ///
    /// `keepingZeros` (a pruned tensor's mask, row-major like `values`) marks weights that must stay
    /// exactly 0: they are quantized to the grid's zero whatever earlier columns pushed onto them, and
    /// that error is compensated like any other (algorithms.md §8).
    public func quantize(_ values: [Float], shape: Shape, hessian: [Float], columnBits: [UInt8]? = nil,
                         keepingZeros zeroMask: [Bool]? = nil, threadCount: Int = 1) throws(LinalgError) -> QuantizedTensor {
        let rows = shape.rowCount, columns = shape.columnCount
        precondition(values.count == rows * columns && hessian.count == columns * columns, "GPTQ: sizes do not fit")
        precondition(columnBits == nil || (columnBits!.count == columns && grid.granularity == .channel), "GPTQ: column widths need channel granularity")
        precondition(zeroMask == nil || zeroMask!.count == values.count, "GPTQ: the zero mask does not fit")
        let zeroMask = zeroMask ?? []
        let n = columns
        // Processing order.
        let diagonal = (0..<n).map { hessian[$0 * n + $0] }
        let order: [Int] = actOrder ? (0..<n).sorted { diagonal[$0] > diagonal[$1] || (diagonal[$0] == diagonal[$1] && $0 < $1) } : Array(0..<n)
        // W and H in processing order.
        var w = [Float](repeating: 0, count: rows * n)
        for r in 0..<rows { for (p, c) in order.enumerated() { w[r * n + p] = values[r * n + c] } }
        var h = [Float](repeating: 0, count: n * n)   // dead inputs are handled by the factorization
        for (pi, i) in order.enumerated() { for (pj, j) in order.enumerated() { h[pi * n + pj] = hessian[i * n + j] } }
        let u = try upperFactorOfInverse(h, n: n)

        // Column widths: class k of width widths[k]; a row's grids are groups r·K + k.
        let widths: [Int] = Set((columnBits ?? []).filter { $0 > 0 }.map { Int($0) }).sorted()
        let classOf: [Int] = (columnBits ?? []).map { b -> Int in b == 0 ? -1 : widths.firstIndex(of: Int(b))! }
        let classGrids = widths.map { IntegerQuantizer(bits: $0, symmetric: symmetric, granularity: .channel) }

        // Grids: one per (row, group) in natural order.
        let groupSize = grid.granularity == .tensor ? rows * n : (grid.granularity == .channel ? n : { if case .group(let g) = grid.granularity { return g }; return n }())
        let groupsPerRow = columnBits != nil ? widths.count : (grid.granularity == .tensor ? 1 : n / groupSize)
        let groupCount = grid.granularity == .tensor ? 1 : rows * groupsPerRow
        var scales = [Float](repeating: 1, count: groupCount)
        var zeros = [Int32](repeating: symmetric ? Int32(1 << (grid.bits - 1)) : 0, count: groupCount)
        if columnBits != nil, symmetric { for g in 0..<groupCount { zeros[g] = Int32(1 << (widths[g % widths.count] - 1)) } }
        var grids = [IntegerQuantizer.Grid?](repeating: nil, count: groupCount)
        func fit(_ g: Int, _ slice: [Float]) {
            var lo = Float.infinity, hi = -Float.infinity
            for v in slice { lo = min(lo, v); hi = max(hi, v) }
            let grid = columnBits != nil ? classGrids[g % widths.count] : self.grid
            guard var fitted = grid.grid(lo: lo, hi: hi) else { grids[g] = nil; return }
            if let half = columnBits != nil ? IntegerQuantizer.halfStorable(fitted.scale) : IntegerQuantizer.halfRounded(fitted.scale) { fitted.scale = half }
            grids[g] = fitted
            scales[g] = fitted.scale
            zeros[g] = fitted.zero
        }
        let dynamicGroups: Bool
        switch grid.granularity {
        case .tensor:
            fit(0, values)
            dynamicGroups = false
        case .channel where columnBits != nil:
            let classColumns = widths.indices.map { k in (0..<n).filter { classOf[$0] == k } }
            for r in 0..<rows {
                for k in widths.indices { fit(r * widths.count + k, classColumns[k].map { values[r * n + $0] }) }
            }
            dynamicGroups = false
        case .channel:
            for r in 0..<rows { fit(r, Array(values[(r * n)..<((r + 1) * n)])) }
            dynamicGroups = false
        case .group:
            dynamicGroups = !actOrder
            if actOrder {
                for r in 0..<rows { for g in 0..<groupsPerRow { fit(r * groupsPerRow + g, Array(values[(r * n + g * groupSize)..<(r * n + (g + 1) * groupSize)])) } }
            }
        }

        var codes = [UInt8](repeating: 0, count: rows * n)
        var errors = [Float](repeating: 0, count: rows * blockSize)
        for start in stride(from: 0, to: n, by: blockSize) {
            let end = min(start + blockSize, n)
            // Rows are independent inside a block: each worker takes whole rows (disjoint writes), so
            // the result does not depend on the thread count.
            w.withUnsafeMutableBufferPointer { wBuffer in
                codes.withUnsafeMutableBufferPointer { codeBuffer in
                    errors.withUnsafeMutableBufferPointer { errorBuffer in
                        scales.withUnsafeMutableBufferPointer { scaleBuffer in
                            zeros.withUnsafeMutableBufferPointer { zeroBuffer in
                                grids.withUnsafeMutableBufferPointer { gridBuffer in
                                  zeroMask.withUnsafeBufferPointer { maskBuffer in
                                    let box = GPTQBuffers(w: wBuffer, codes: codeBuffer, errors: errorBuffer, scales: scaleBuffer,
                                                          zeros: zeroBuffer, grids: gridBuffer, keepZero: maskBuffer)
                                    ParallelLoop.forEachRange(count: rows, threadCount: threadCount) { rowRange in
                                        for r in rowRange {
                                            quantizeBlockRow(r, start: start, end: end, n: n, order: order, u: u, dynamicGroups: dynamicGroups,
                                                             groupSize: groupSize, groupsPerRow: groupsPerRow, classOf: classOf,
                                                             classGrids: classGrids, box: box)
                                        }
                                    }
                                  }
                                }
                            }
                        }
                    }
                }
            }
            LazyBlockUpdate.apply(&w, errors: errors, u: u, rows: rows, n: n, start: start, end: end, blockSize: blockSize)
        }
        if let columnBits {
            return QuantizedTensor(shape: shape, symmetric: symmetric, columnBits: columnBits, codes: codes, scales: scales, zeroPoints: zeros)
        }
        return QuantizedTensor(shape: shape, bits: grid.bits, symmetric: symmetric, granularity: grid.granularity,
                               codes: codes, scales: scales, zeroPoints: zeros)
    }

    var symmetric: Bool { grid.symmetric }

    /// Row `r` of one block: for each column `j` in `start..<end` (processing order), fit the row's
    /// group when it starts there (dynamic groups), quantize, and push the error onto the block's
    /// later columns of the row.
    private func quantizeBlockRow(_ r: Int, start: Int, end: Int, n: Int, order: [Int], u: [Float], dynamicGroups: Bool,
                                  groupSize: Int, groupsPerRow: Int, classOf: [Int], classGrids: [IntegerQuantizer], box: GPTQBuffers) {
        let w = box.w, blockSize = self.blockSize
        for j in start..<end {
            let natural = order[j]
            let column = classOf.isEmpty ? nil : classOf[natural]   // column widths: the column's class (−1: dropped)
            let g: Int = switch grid.granularity {
            case .tensor: 0
            case .channel: column.map { r * groupsPerRow + max($0, 0) } ?? r
            case .group: r * groupsPerRow + natural / groupSize
            }
            let grid = column.map { $0 >= 0 ? classGrids[$0] : self.grid } ?? self.grid
            if dynamicGroups && natural % groupSize == 0 {
                var lo = Float.infinity, hi = -Float.infinity
                for k in j..<(j + groupSize) { lo = min(lo, w[r * n + k]); hi = max(hi, w[r * n + k]) }
                if var fitted = grid.grid(lo: lo, hi: hi) {
                    if let half = IntegerQuantizer.halfRounded(fitted.scale) { fitted.scale = half }
                    box.grids[g] = fitted
                    box.scales[g] = fitted.scale
                    box.zeros[g] = fitted.zero
                } else {
                    box.grids[g] = nil
                }
            }
            let x = w[r * n + j]
            let code: UInt8, q: Float
            if column == -1 {
                code = 0
                q = 0
            } else if !box.keepZero.isEmpty && box.keepZero[r * n + natural] {
                code = box.grids[g].map { grid.encode(0, $0) } ?? UInt8(box.zeros[g])
                q = 0
            } else if let fitted = box.grids[g] {
                code = grid.encode(x, fitted)
                q = fitted.scale * Float(Int32(code) - fitted.zero)
            } else {
                code = UInt8(box.zeros[g])
                q = 0
            }
            box.codes[r * n + natural] = code
            let err = (x - q) / u[j * n + j]
            box.errors[r * blockSize + (j - start)] = err
            u.withUnsafeBufferPointer { uu in
                var k = j + 1
                while k < end {
                    w[r * n + k] -= err * uu[j * n + k]
                    k += 1
                }
            }
        }
    }

    /// The damped factorizations of `H` this quantizer uses (`damping` relative to `mean(diag H)`).
    var factorization: DampedHessian { DampedHessian(damping: damping) }

    /// `DampedHessian.upperFactorOfInverse` with this quantizer's damping.
    func upperFactorOfInverse(_ h: [Float], n: Int) throws(LinalgError) -> [Float] {
        try factorization.upperFactorOfInverse(h, n: n)
    }

    /// `DampedHessian.diagonalOfUpperFactorOfInverse` with this quantizer's damping.
    func diagonalOfUpperFactorOfInverse(_ h: [Float], n: Int) throws(LinalgError) -> [Float] {
        try factorization.diagonalOfUpperFactorOfInverse(h, n: n)
    }
}

/// The per-row state GPTQ's block step writes (each row only its own elements and groups).
struct GPTQBuffers: @unchecked Sendable {
    let w: UnsafeMutableBufferPointer<Float>
    let codes: UnsafeMutableBufferPointer<UInt8>
    let errors: UnsafeMutableBufferPointer<Float>
    let scales: UnsafeMutableBufferPointer<Float>
    let zeros: UnsafeMutableBufferPointer<Int32>
    let grids: UnsafeMutableBufferPointer<IntegerQuantizer.Grid?>
    /// Empty, or one flag per weight (natural order): the weight stays exactly 0.
    let keepZero: UnsafeBufferPointer<Bool>
}
