/// Problems with tensor shapes, dtypes and byte counts.
public enum TensorError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    case negativeDimension([Int])
    case elementCountOverflow([Int])
    /// `elementCount * bits` overflows or is not a whole number of bytes (sub-byte types).
    case byteCountUndefined(dtype: DType, shape: [Int])
    case byteCountMismatch(dtype: DType, shape: [Int], expected: Int, actual: Int)
    case notConvertibleToFloat(DType)
    case elementCountMismatch(expected: Int, actual: Int)

    public var description: String {
        switch self {
        case .negativeDimension(let d): "negative dimension in shape \(d)"
        case .elementCountOverflow(let d): "element count of shape \(d) overflows"
        case .byteCountUndefined(let t, let d):
            "shape \(d) of \(t) is not a whole number of bytes (or its byte count overflows)"
        case .byteCountMismatch(let t, let d, let e, let a):
            "\(t) tensor of shape \(d) needs \(e) bytes, got \(a)"
        case .notConvertibleToFloat(let t): "dtype \(t) has no float conversion"
        case .elementCountMismatch(let e, let a): "expected \(e) elements, got \(a)"
        }
    }
}
