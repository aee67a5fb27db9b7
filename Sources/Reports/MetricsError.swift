/// Operands of an error metric that do not fit together (element counts, matrix sizes).
///
/// These come from shapes, so a caller that reads the shapes from files should validate them first or
/// wrap this error with the file name; the metrics never trap on them.
public enum MetricsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `W` and `W'` hold different numbers of values.
    case countMismatch(original: Int, reconstruction: Int)
    /// A weight given as `rows x columns` does not hold `rows * columns` values.
    case matrixSizeMismatch(rows: Int, columns: Int, count: Int)
    /// The Gram matrix `H` must be `columns x columns`.
    case gramSizeMismatch(columns: Int, gramCount: Int)
    /// The diagonal `act_sq` must hold `columns` values.
    case diagonalSizeMismatch(columns: Int, diagonalCount: Int)
    /// The original and reconstructed tensors have different shapes.
    case shapeMismatch(original: [Int], reconstruction: [Int])

    public var description: String {
        switch self {
        case .countMismatch(let a, let b):
            "the original holds \(a) values but the reconstruction holds \(b)"
        case .matrixSizeMismatch(let r, let c, let n):
            "a \(r) x \(c) weight needs \(r.multipliedReportingOverflow(by: c).partialValue) values, got \(n)"
        case .gramSizeMismatch(let c, let n):
            "the Gram matrix of a weight with \(c) input columns must hold \(c) x \(c) values, got \(n)"
        case .diagonalSizeMismatch(let c, let n):
            "the activation diagonal of a weight with \(c) input columns must hold \(c) values, got \(n)"
        case .shapeMismatch(let a, let b):
            "the original has shape \(a) but the reconstruction has shape \(b)"
        }
    }
}
