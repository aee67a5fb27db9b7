import TensorCore

/// A compactly stored sparse tensor whose record or parts do not fit together, or a tensor that
/// cannot be stored compactly (exit 65). Each case names the file and the tensor.
public enum SparseLayoutError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    /// Reading: the `modelpress.sparsity` record or a part is wrong (`tensor` is the record key for
    /// problems of the whole record).
    case malformed(file: String, tensor: String, reason: String)
    /// Writing: the tensor's parts cannot be given their names.
    case unstorable(file: String, tensor: String, reason: String)

    public var description: String {
        switch self {
        case .malformed(let f, let t, let r): "\(f): sparse tensor '\(t)': \(r)"
        case .unstorable(let f, let t, let r): "\(f): sparse tensor '\(t)' cannot be stored compactly: \(r)"
        }
    }
}
