import TensorCore
import CheckpointFormats

extension CompressionReport {
    /// Reads a report from JSON bytes; `file` names the source in errors.
    ///
    /// Every schema member is required except `output_relative_error` (absent means no calibration
    /// statistics); `recipe` may be null. `null` numbers are read back as `CompressionReport` documents
    /// (`+∞` for the error ratios and `ratio`, the sign from `relative_error` for `sqnr_db`, NaN
    /// otherwise). Members this version does not know are ignored, so newer reports with extra members
    /// still read. Rejected, with the field named: a missing member, a member of the wrong JSON kind, a
    /// negative or fractional count, a duplicate key, two tensors with the same name, and `totals`
    /// counts (`parameters`, `bytes_in`, `bytes_out`) that differ from the sums over `tensors`.
    public init(decoding bytes: UnsafeRawBufferPointer, file: String) throws(ReportError) {
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch { throw ReportError(file: file, kind: .malformedJSON(error)) }
        try self.init(json: value, file: file)
    }

    /// Reads a report from JSON text; `file` names the source in errors.
    public init(decoding text: String, file: String) throws(ReportError) {
        let bytes = Array(text.utf8)
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(ReportError) in try CompressionReport(decoding: raw, file: file) }
        }
        self = try result.get()
    }

    /// Reads a report from a parsed JSON value; `file` names the source in errors.
    public init(json: JSONValue, file: String) throws(ReportError) {
        guard json.objectMembers != nil else {
            throw ReportError(file: file, kind: .unknownSchema("the document is \(json.kindName), not an object"))
        }
        let root = try FieldReader(json, path: "", file: file)
        guard let tool = root.value("tool") else {
            throw ReportError(file: file, kind: .unknownSchema("it has no 'tool' member"))
        }
        guard tool.stringValue == CompressionReport.toolName else {
            let found = tool.stringValue.map { JSONWriter.quoted($0) } ?? tool.kindName
            throw ReportError(file: file, kind: .unknownSchema("'tool' is \(found), expected \"\(CompressionReport.toolName)\""))
        }
        version = try root.string("version")
        input = try root.string("input")
        output = try root.string("output")
        recipe = try root.optionalString("recipe")

        let totalsReader = try root.object("totals")
        let storedCounts = (try totalsReader.count("parameters"), try totalsReader.count("bytes_in"),
                            try totalsReader.count("bytes_out"))
        _ = try totalsReader.number("ratio", null: .infinity)
        _ = try totalsReader.number("bits_per_weight", null: .nan)

        var records: [TensorRecord] = []
        var names = Set<String>()
        for (index, element) in try root.array("tensors").enumerated() {
            let record = try FieldReader.tensorRecord(element, path: "tensors[\(index)]", file: file)
            guard names.insert(record.name).inserted else {
                throw ReportError(file: file, kind: .duplicateTensor(record.name), tensor: record.name)
            }
            records.append(record)
        }
        tensors = records

        let derived = totals
        for (key, stored, sum) in [("parameters", storedCounts.0, derived.parameterCount),
                                   ("bytes_in", storedCounts.1, derived.inputByteCount),
                                   ("bytes_out", storedCounts.2, derived.outputByteCount)] where stored != sum {
            throw ReportError(file: file, kind: .invalidValue(
                field: "totals.\(key)", reason: "is \(stored) but the tensors add up to \(sum)"))
        }
    }
}

/// Typed access to one JSON object of a report, producing `ReportError`s that name the field path.
struct FieldReader {
    let file: String
    let path: String
    let tensor: String?
    let members: [(key: String, value: JSONValue)]

    init(_ value: JSONValue, path: String, file: String, tensor: String? = nil) throws(ReportError) {
        self.file = file
        self.path = path
        self.tensor = tensor
        guard let members = value.objectMembers else {
            throw ReportError(file: file, kind: .wrongType(field: path, expected: "an object", found: value.kindName), tensor: tensor)
        }
        var seen = Set<String>()
        for m in members where !seen.insert(m.key).inserted {
            throw ReportError(file: file, kind: .duplicateKey(path.isEmpty ? m.key : path + "." + m.key), tensor: tensor)
        }
        self.members = members
    }

    func fieldPath(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    func value(_ key: String) -> JSONValue? { members.first { $0.key == key }?.value }

    func fail(_ kind: ReportError.Kind) -> ReportError { ReportError(file: file, kind: kind, tensor: tensor) }

    func required(_ key: String) throws(ReportError) -> JSONValue {
        guard let v = value(key) else { throw fail(.missingField(fieldPath(key))) }
        return v
    }

    func wrongType(_ key: String, _ expected: String, _ found: JSONValue) -> ReportError {
        let foundText = if case .number(let text) = found { "the number \(text)" } else { found.kindName }
        return fail(.wrongType(field: fieldPath(key), expected: expected, found: foundText))
    }

    func string(_ key: String) throws(ReportError) -> String {
        let v = try required(key)
        guard let s = v.stringValue else { throw wrongType(key, "a string", v) }
        return s
    }

    /// A string or null.
    func optionalString(_ key: String) throws(ReportError) -> String? {
        let v = try required(key)
        if v == .null { return nil }
        guard let s = v.stringValue else { throw wrongType(key, "a string or null", v) }
        return s
    }

    /// A non-negative integer.
    func count(_ key: String) throws(ReportError) -> Int {
        let v = try required(key)
        guard let n = v.nonNegativeInt else { throw wrongType(key, "a non-negative integer", v) }
        return n
    }

    /// A finite number, or null read as `null`.
    func number(_ key: String, null: Double) throws(ReportError) -> Double {
        try number(key, value: try required(key), null: null)
    }

    /// Like `number`, but nil when the member is absent.
    func optionalNumber(_ key: String, null: Double) throws(ReportError) -> Double? {
        guard let v = value(key) else { return nil }
        return try number(key, value: v, null: null)
    }

    private func number(_ key: String, value v: JSONValue, null: Double) throws(ReportError) -> Double {
        switch v {
        case .null: return null
        case .number(let text):
            guard let d = Double(text), d.isFinite else {
                throw fail(.invalidValue(field: fieldPath(key), reason: "the number \(text) is out of range"))
            }
            return d
        default: throw wrongType(key, "a number or null", v)
        }
    }

    func object(_ key: String) throws(ReportError) -> FieldReader {
        let v = try required(key)
        guard v.objectMembers != nil else { throw wrongType(key, "an object", v) }
        return try FieldReader(v, path: fieldPath(key), file: file, tensor: tensor)
    }

    func array(_ key: String) throws(ReportError) -> [JSONValue] {
        let v = try required(key)
        guard let a = v.arrayElements else { throw wrongType(key, "an array", v) }
        return a
    }

    /// One element of `tensors`; the name is read first so later errors can name the tensor.
    static func tensorRecord(_ value: JSONValue, path: String, file: String) throws(ReportError) -> TensorRecord {
        let unnamed = try FieldReader(value, path: path, file: file)
        let name = try unnamed.string("name")
        let r = try FieldReader(value, path: path, file: file, tensor: name)

        let dimensionValues = try r.array("shape")
        var dimensions: [Int] = []
        for (i, d) in dimensionValues.enumerated() {
            guard let n = d.nonNegativeInt else { throw r.wrongType("shape[\(i)]", "a non-negative integer", d) }
            dimensions.append(n)
        }
        let shape: Shape
        do { shape = try Shape(validating: dimensions) } catch {
            throw r.fail(.invalidValue(field: r.fieldPath("shape"), reason: "the element count overflows"))
        }
        let relativeError = try r.number("relative_error", null: .infinity)
        return TensorRecord(
            name: name, shape: shape, inputDType: try r.string("dtype_in"), encoding: try r.string("encoding"),
            bitsPerWeight: try r.number("bits_per_weight", null: .nan), sparsity: try r.number("sparsity", null: .nan),
            inputByteCount: try r.count("bytes_in"), outputByteCount: try r.count("bytes_out"),
            relativeError: relativeError,
            sqnrDecibels: try r.number("sqnr_db", null: relativeError == 0 ? .infinity : -.infinity),
            maxAbsoluteError: try r.number("max_abs_error", null: .nan), cosine: try r.number("cosine", null: .nan),
            outputRelativeError: try r.optionalNumber("output_relative_error", null: .infinity))
    }
}
