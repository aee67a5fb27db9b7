import TensorCore
import CheckpointFormats

/// A report file that cannot be read as a ModelPress report, naming the file, the field and, when
/// known, the tensor (exit code 65).
///
/// Field paths are written as in jq: `totals.ratio`, `tensors[3].sqnr_db`.
public struct ReportError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    /// What is wrong; each case carries the field path it is about.
    public enum Kind: Equatable, Sendable {
        /// The file is not valid JSON.
        case malformedJSON(JSONError)
        /// Valid JSON, but not a report this version reads (no `"tool": "modelpress"`, not an object).
        case unknownSchema(String)
        /// A required field is absent.
        case missingField(String)
        /// A field holds the wrong kind of JSON value, e.g. a string where a number belongs.
        case wrongType(field: String, expected: String, found: String)
        /// A field has the right kind but an unusable value (negative size, number out of range).
        case invalidValue(field: String, reason: String)
        /// An object names the same key twice.
        case duplicateKey(String)
        /// Two tensors share a name (`diff` matches tensors by name).
        case duplicateTensor(String)
    }

    /// The report file as the user named it.
    public let file: String
    /// What is wrong, and where.
    public let kind: Kind
    /// The tensor whose record holds the problem, when its name was read.
    public let tensor: String?

    /// An error about `file`, optionally inside the record of `tensor`.
    public init(file: String, kind: Kind, tensor: String? = nil) {
        self.file = file
        self.kind = kind
        self.tensor = tensor
    }

    /// The field path the error names (nil for JSON syntax and schema errors).
    public var field: String? {
        switch kind {
        case .missingField(let f), .wrongType(let f, _, _), .invalidValue(let f, _), .duplicateKey(let f): f
        case .malformedJSON, .unknownSchema, .duplicateTensor: nil
        }
    }

    public var description: String {
        let detail: String = switch kind {
        case .malformedJSON(let e): "not valid JSON: \(e)"
        case .unknownSchema(let why): "not a ModelPress report: \(why)"
        case .missingField(let f): "missing field '\(f)'"
        case .wrongType(let f, let expected, let found): "field '\(f)' must be \(expected), found \(found)"
        case .invalidValue(let f, let why): "field '\(f)': \(why)"
        case .duplicateKey(let f): "field '\(f)' appears twice"
        case .duplicateTensor(let name): "tensor '\(name)' appears twice"
        }
        return "\(file): \(detail)" + (tensor.map { " (tensor '\($0)')" } ?? "")
    }
}
