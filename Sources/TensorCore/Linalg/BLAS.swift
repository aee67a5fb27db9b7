internal import COpenBLAS

/// Dense single-precision BLAS, row-major. The only place in ModelPress that calls CBLAS.
public enum BLAS {
    /// Whether an operand is used as stored or transposed.
    public enum Transpose: Sendable { case none, transposed }

    /// `C = alpha * op(A) * op(B) + beta * C` for row-major matrices, with op(A) of shape m x k and
    /// op(B) of shape k x n. Leading dimensions are the stored row lengths.
    /// The corresponding C function is `cblas_sgemm`.
    public static func gemm(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Sets the number of threads OpenBLAS uses. The corresponding C function is `openblas_set_num_threads`.
    public static func setThreadCount(_ count: Int) { openblas_set_num_threads(Int32(count)) }
}

extension BLAS.Transpose {
    fileprivate var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}
