import TensorCore

/// The lazy batch update of the column sweeps (GPTQ, SparseGPT): after a block of columns
/// `start..<end` has been processed with rank-1 updates inside the block, the columns after it get
/// the block's accumulated effect in one GEMM, `W[:, end:] −= E · U[start..<end, end:]`, where
/// `E [rows, blockSize]` holds each processed column's scaled error `(w_j − q_j)/U_jj`.
enum LazyBlockUpdate {
    /// `w` row-major `[rows, n]`, `u` row-major `[n, n]`, `errors` row-major `[rows, blockSize]`.
    static func apply(_ w: inout [Float], errors: [Float], u: [Float], rows: Int, n: Int, start: Int, end: Int, blockSize: Int) {
        guard end < n else { return }
        errors.withUnsafeBufferPointer { e in
            u.withUnsafeBufferPointer { uu in
                w.withUnsafeMutableBufferPointer { ww in
                    BLAS.gemm(.none, .none, m: rows, n: n - end, k: end - start, alpha: -1,
                              a: e.baseAddress!, lda: blockSize, b: uu.baseAddress! + start * n + end, ldb: n,
                              beta: 1, c: ww.baseAddress! + end, ldc: n)
                }
            }
        }
    }
}
