import TensorCore

/// A malformed safetensors file, naming the file and (where it applies) the tensor.
///
/// The cases follow the reference reader's `SafeTensorError` (safetensors crate), plus `duplicateTensor`,
/// which the reference tolerates (the last entry wins) and ModelPress rejects.
public struct SafetensorsError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    public enum Kind: Equatable, Sendable {
        /// Shorter than the 8-byte length prefix.
        case headerTooSmall(fileSize: Int)
        /// The declared header length exceeds 100,000,000 bytes.
        case headerTooLarge(length: UInt64)
        /// 8 + header length runs past the end of the file.
        case invalidHeaderLength(length: UInt64, fileSize: Int)
        case invalidUTF8
        /// Not JSON, or JSON of the wrong shape (the message says which).
        case invalidJSON(String)
        case unknownDType(tensor: String, dtype: String)
        /// After sorting by offsets, the tensor does not start where the previous one ended (hole or
        /// overlap), or its end is before its begin.
        case invalidOffset(tensor: String)
        /// Element count or bit count overflows.
        case overflow(tensor: String)
        /// A sub-byte dtype whose bit count is not a multiple of 8.
        case misalignedSubByte(tensor: String)
        /// end - begin differs from the byte count implied by dtype and shape.
        case byteCountMismatch(tensor: String, expected: Int, actual: Int)
        /// The data section is not covered exactly: trailing bytes or missing bytes.
        case incompleteBuffer(dataEnd: Int, fileSize: Int)
        case duplicateTensor(String)
    }

    public let file: String
    public let kind: Kind

    public init(file: String, kind: Kind) {
        self.file = file
        self.kind = kind
    }

    public var description: String {
        let detail: String = switch kind {
        case .headerTooSmall(let size): "header too small (file is \(size) bytes; a safetensors file starts with an 8-byte header length)"
        case .headerTooLarge(let n): "header too large (\(n) bytes; the limit is 100000000)"
        case .invalidHeaderLength(let n, let size): "invalid header length \(n): the file has only \(size) bytes"
        case .invalidUTF8: "invalid UTF-8 in header"
        case .invalidJSON(let m): "invalid JSON in header: \(m)"
        case .unknownDType(let t, let d): "tensor '\(t)': unknown dtype '\(d)'"
        case .invalidOffset(let t): "invalid offset for tensor '\(t)' (data offsets must be in order, contiguous and start at 0)"
        case .overflow(let t): "tensor '\(t)': overflow computing its byte count"
        case .misalignedSubByte(let t): "tensor '\(t)': sub-byte dtype does not fill whole bytes"
        case .byteCountMismatch(let t, let e, let a): "tensor '\(t)': data offsets span \(a) bytes but dtype and shape need \(e)"
        case .incompleteBuffer(let end, let size): "incomplete metadata, file not fully covered: data ends at byte \(end) but the file has \(size) bytes"
        case .duplicateTensor(let n): "duplicate tensor name '\(n)'"
        }
        return "\(file): \(detail)"
    }
}
