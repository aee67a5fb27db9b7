/// Failures reported by LAPACK routines.
public enum LinalgError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The leading minor of this order is not positive definite (Cholesky failed).
    case notPositiveDefinite(leadingMinor: Int)
    /// An argument was rejected by the routine (a programmer error surfaced as a value).
    case illegalArgument(position: Int)

    public var description: String {
        switch self {
        case .notPositiveDefinite(let k): "matrix is not positive definite (leading minor \(k))"
        case .illegalArgument(let p): "illegal argument \(p) to a LAPACK routine"
        }
    }
}
