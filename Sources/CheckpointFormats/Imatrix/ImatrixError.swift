import TensorCore

/// A malformed importance-matrix file (llama.cpp `.dat` or GGUF imatrix), naming the file and entry (exit 65).
public struct ImatrixError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    public enum Kind: Equatable, Sendable {
        case truncated(String)
        case badEntryCount(Int32)
        case badNameLength(Int32)
        case badValueCount(entry: String, count: Int32)
        case duplicateEntry(String)
        case invalidUTF8
        case nonFinite(entry: String)
        case notImatrixGGUF(String)
        case missingCounts(entry: String)
        case badTensor(entry: String, reason: String)
        case trailingBytes(Int)
    }

    public let file: String
    public let kind: Kind

    public init(file: String, kind: Kind) {
        self.file = file
        self.kind = kind
    }

    public var description: String {
        let detail: String = switch kind {
        case .truncated(let what): "file ends inside \(what)"
        case .badEntryCount(let n): "entry count \(n) must be at least 1"
        case .badNameLength(let n): "entry name length \(n) is out of range"
        case .badValueCount(let e, let n): "entry '\(e)': value count \(n) is out of range"
        case .duplicateEntry(let e): "entry '\(e)' appears twice"
        case .invalidUTF8: "entry name is not valid UTF-8"
        case .nonFinite(let e): "entry '\(e)' holds NaN or Inf"
        case .notImatrixGGUF(let why): "not a GGUF imatrix: \(why)"
        case .missingCounts(let e): "'\(e).in_sum2' has no '\(e).counts' partner"
        case .badTensor(let e, let why): "entry '\(e)': \(why)"
        case .trailingBytes(let n): "\(n) unexpected bytes after the data"
        }
        return "\(file): \(detail)"
    }
}
