internal import CLAPACKE

/// Dense single-precision LAPACK, row-major. The only place in ModelPress that calls LAPACKE.
///
/// Every routine here works on one triangle of a symmetric or triangular matrix, and a row-major
/// triangle is the other triangle of the same memory read column-major (transposed). So the calls
/// go to LAPACK's native column-major layout with the triangle flipped: the same result, without
/// the two transposing copies LAPACKE makes for `LAPACK_ROW_MAJOR`.
public enum LAPACK {
    /// Which triangle of a symmetric matrix holds the data.
    public enum Triangle: Sendable { case upper, lower }

    /// In-place Cholesky factorization of the symmetric positive definite n x n matrix `a`
    /// (row-major, leading dimension `lda`): on return the chosen triangle holds L (A = L Lᵀ) or U
    /// (A = Uᵀ U); the other triangle is left as it was.
    /// Throws `LinalgError.notPositiveDefinite` when a leading minor is not positive.
    /// The corresponding C function is `LAPACKE_spotrf`.
    public static func choleskyFactor(_ triangle: Triangle, n: Int, a: UnsafeMutablePointer<Float>, lda: Int) throws(LinalgError) {
        let info = LAPACKE_spotrf(LAPACK_COL_MAJOR, triangle.columnMajorCharacter, Int32(n), a, Int32(lda))
        try check(info)
    }

    /// Inverse of a symmetric positive definite matrix from its Cholesky factor (in place, chosen triangle).
    /// The corresponding C function is `LAPACKE_spotri`.
    public static func choleskyInverse(_ triangle: Triangle, n: Int, a: UnsafeMutablePointer<Float>, lda: Int) throws(LinalgError) {
        let info = LAPACKE_spotri(LAPACK_COL_MAJOR, triangle.columnMajorCharacter, Int32(n), a, Int32(lda))
        try check(info)
    }

    /// In-place inverse of a triangular n x n matrix with a non-unit diagonal (the chosen triangle;
    /// the other is left as it was). Throws `LinalgError.notPositiveDefinite` when a diagonal entry
    /// is exactly zero (the matrix is singular). The corresponding C function is `LAPACKE_strtri`.
    public static func triangularInverse(_ triangle: Triangle, n: Int, a: UnsafeMutablePointer<Float>, lda: Int) throws(LinalgError) {
        let info = LAPACKE_strtri(LAPACK_COL_MAJOR, triangle.columnMajorCharacter, CChar(bitPattern: UInt8(ascii: "N")), Int32(n), a, Int32(lda))
        try check(info)
    }

    private static func check(_ info: Int32) throws(LinalgError) {
        if info > 0 { throw .notPositiveDefinite(leadingMinor: Int(info)) }
        if info < 0 { throw .illegalArgument(position: Int(-info)) }
    }
}

extension LAPACK.Triangle {
    /// The row-major triangle named as LAPACK's column-major view of the same memory sees it.
    fileprivate var columnMajorCharacter: CChar { CChar(bitPattern: self == .upper ? UInt8(ascii: "L") : UInt8(ascii: "U")) }
}
