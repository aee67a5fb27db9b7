internal import CLAPACKE

/// Dense single-precision LAPACK, row-major. The only place in ModelPress that calls LAPACKE.
public enum LAPACK {
    /// Which triangle of a symmetric matrix holds the data.
    public enum Triangle: Sendable { case upper, lower }

    /// In-place Cholesky factorization of the symmetric positive definite n x n matrix `a`
    /// (row-major, leading dimension `lda`): on return the chosen triangle holds L (A = L Lᵀ) or U
    /// (A = Uᵀ U); the other triangle is left as it was.
    /// Throws `LinalgError.notPositiveDefinite` when a leading minor is not positive.
    /// The corresponding C function is `LAPACKE_spotrf`.
    public static func choleskyFactor(_ triangle: Triangle, n: Int, a: UnsafeMutablePointer<Float>, lda: Int) throws(LinalgError) {
        let info = LAPACKE_spotrf(LAPACK_ROW_MAJOR, triangle.lapackCharacter, Int32(n), a, Int32(lda))
        try check(info)
    }

    /// Inverse of a symmetric positive definite matrix from its Cholesky factor (in place, chosen triangle).
    /// The corresponding C function is `LAPACKE_spotri`.
    public static func choleskyInverse(_ triangle: Triangle, n: Int, a: UnsafeMutablePointer<Float>, lda: Int) throws(LinalgError) {
        let info = LAPACKE_spotri(LAPACK_ROW_MAJOR, triangle.lapackCharacter, Int32(n), a, Int32(lda))
        try check(info)
    }

    private static func check(_ info: Int32) throws(LinalgError) {
        if info > 0 { throw .notPositiveDefinite(leadingMinor: Int(info)) }
        if info < 0 { throw .illegalArgument(position: Int(-info)) }
    }
}

extension LAPACK.Triangle {
    fileprivate var lapackCharacter: CChar { CChar(bitPattern: self == .upper ? UInt8(ascii: "U") : UInt8(ascii: "L")) }
}
