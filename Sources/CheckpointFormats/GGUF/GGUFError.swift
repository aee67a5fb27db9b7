import TensorCore

/// A malformed GGUF file, naming the file and the key or tensor at fault (exit 65).
///
/// The checks follow llama.cpp's C reader (`gguf_init_from_reader`): counts and lengths bounded by the
/// bytes left in the file, known value types, no nested arrays, unique non-empty keys, a UINT32
/// power-of-two `general.alignment`, tensor names under 64 bytes, at most 4 dims, known (or opaque
/// future) ggml types, rows made of whole blocks, and data laid out contiguously in info order with
/// each tensor padded to the alignment.
public struct GGUFError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    public enum Kind: Equatable, Sendable {
        case truncated(String)
        case badMagic
        case unsupportedVersion(UInt32)
        case bigEndian
        case countTooLarge(what: String, count: UInt64)
        case stringTooLong(context: String, length: UInt64)
        case invalidUTF8(context: String)
        case emptyKey
        case duplicateKey(String)
        case unknownValueType(key: String, type: UInt32)
        case nestedArray(key: String)
        case badAlignment(String)
        case nameTooLong(String)
        case duplicateTensor(String)
        case tooManyDimensions(tensor: String, count: UInt32)
        case negativeDimension(tensor: String)
        case elementCountOverflow(tensor: String)
        case invalidTensorType(tensor: String, type: UInt32)
        case rowNotWholeBlocks(tensor: String, rowLength: Int, type: String)
        case offsetMismatch(tensor: String, expected: UInt64, actual: UInt64)
        case dataOutOfBounds(tensor: String)
        /// An opaque (future) type whose element count needs less than one bit per stored byte.
        case opaqueElementsExceedData(tensor: String, elements: Int64, bytes: Int)
        case trailingBytes(expectedEnd: Int, fileSize: Int)
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
        case .badMagic: "not a GGUF file (bad magic)"
        case .unsupportedVersion(let v): v == 1 ? "GGUF v1 is no longer supported" : "unsupported GGUF version \(v)"
        case .bigEndian: "big-endian GGUF files are not supported"
        case .countTooLarge(let what, let n): "\(what) count \(n) is larger than the file can hold"
        case .stringTooLong(let c, let n): "\(c): string length \(n) runs past the end of the file"
        case .invalidUTF8(let c): "\(c): string is not valid UTF-8"
        case .emptyKey: "empty metadata key"
        case .duplicateKey(let k): "duplicate metadata key '\(k)'"
        case .unknownValueType(let k, let t): "metadata '\(k)': unknown value type \(t)"
        case .nestedArray(let k): "metadata '\(k)': nested arrays are not supported"
        case .badAlignment(let m): "general.alignment \(m)"
        case .nameTooLong(let n): "tensor name '\(n)' is longer than 63 bytes"
        case .duplicateTensor(let n): "duplicate tensor name '\(n)'"
        case .tooManyDimensions(let t, let n): "tensor '\(t)': \(n) dimensions (at most 4)"
        case .negativeDimension(let t): "tensor '\(t)': negative dimension"
        case .elementCountOverflow(let t): "tensor '\(t)': element count overflows"
        case .invalidTensorType(let t, let id): "tensor '\(t)': invalid ggml type \(id)"
        case .rowNotWholeBlocks(let t, let n, let ty): "tensor '\(t)': row length \(n) is not a multiple of the \(ty) block size"
        case .offsetMismatch(let t, let e, let a): "tensor '\(t)' has offset \(a), expected \(e) (data must be contiguous and aligned)"
        case .dataOutOfBounds(let t): "tensor '\(t)': data runs past the end of the file"
        case .opaqueElementsExceedData(let t, let n, let b): "tensor '\(t)': \(n) elements of an unknown ggml type cannot fit in its \(b) bytes (every ggml type takes at least 1 bit per element)"
        case .trailingBytes(let e, let s): "data ends at byte \(e) but the file has \(s) bytes"
        }
        return "\(file): \(detail)"
    }
}
