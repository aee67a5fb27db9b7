import TensorCore
import CheckpointFormats

/// The report of one run: what went in, what came out, and the error of every tensor.
///
/// JSON schema (DESIGN.md, Reports), members always in this order:
///
///     {"tool": "modelpress", "version", "input", "output", "recipe",
///      "totals": {"parameters", "bytes_in", "bytes_out", "ratio", "bits_per_weight"},
///      "tensors": [{"name", "shape", "dtype_in", "encoding", "bits_per_weight", "sparsity",
///                   "bytes_in", "bytes_out", "relative_error", "sqnr_db", "max_abs_error",
///                   "cosine", "output_relative_error"?}]}
///
/// with `ratio = bytes_in / bytes_out` and `bits_per_weight = 8·bytes_out / parameters` (see
/// `Totals`) and the per-tensor metrics of `TensorRecord`. `recipe` is the recipe path, or null when
/// the run had none (`modelpress report`, `convert`).
///
/// Numbers: integers as integers; other numbers as the shortest decimal that reads back as exactly
/// the same `Double` (`0.8`, `2.5e-05`, `5.0`), so encode → decode is the identity and the same
/// values always give the same bytes. JSON has no infinity, so a non-finite value is written as
/// `null`, with one meaning per field:
/// - `relative_error`, `output_relative_error`, `totals.ratio`: `null` is `+∞` (the denominator is
///   0 and the numerator is not: an all-zero original reconstructed as non-zero, or `bytes_out` 0);
/// - `sqnr_db`: `null` is infinite and takes its sign from `relative_error`: `+∞` (lossless) when
///   `relative_error` is 0, `−∞` when `relative_error` is null. A lossless tensor therefore reads
///   `"relative_error": 0.0, "sqnr_db": null, "max_abs_error": 0.0, "cosine": 1.0`;
/// - `max_abs_error`, `cosine`, `bits_per_weight`, `sparsity`: `null` only for NaN (inputs that held
///   NaN or infinities), read back as NaN.
/// An absent `output_relative_error` means no calibration statistics were given.
public struct CompressionReport: Sendable, Equatable {
    /// The `tool` member; a report without it is not read (`ReportError.Kind.unknownSchema`).
    public static let toolName = "modelpress"

    /// Version of the tool that wrote the report.
    public var version: String
    /// The input checkpoint path.
    public var input: String
    /// The output checkpoint path (the compressed file for `modelpress report`).
    public var output: String
    /// The recipe path, nil when the run used none.
    public var recipe: String?
    /// One record per tensor, in checkpoint order.
    public var tensors: [TensorRecord]

    /// A report of `tensors`; `totals` are derived from them.
    public init(version: String, input: String, output: String, recipe: String?, tensors: [TensorRecord]) {
        self.version = version
        self.input = input
        self.output = output
        self.recipe = recipe
        self.tensors = tensors
    }

    /// Sums over `tensors`.
    public var totals: Totals { Totals(tensors) }

    /// The report as a JSON value, members in schema order.
    public var jsonValue: JSONValue {
        let t = totals
        let totalsValue: JSONValue = .object([
            ("parameters", .integer(t.parameterCount)), ("bytes_in", .integer(t.inputByteCount)),
            ("bytes_out", .integer(t.outputByteCount)), ("ratio", .double(t.ratio)),
            ("bits_per_weight", .double(t.bitsPerWeight)),
        ])
        return .object([
            ("tool", .string(CompressionReport.toolName)), ("version", .string(version)),
            ("input", .string(input)), ("output", .string(output)),
            ("recipe", recipe.map { .string($0) } ?? .null),
            ("totals", totalsValue), ("tensors", .array(tensors.map(CompressionReport.jsonValue(of:)))),
        ])
    }

    /// Indented JSON (two spaces, shapes on one line) with a trailing newline: the `--report` file.
    public func renderJSON() -> String { JSONWriter.pretty(jsonValue) }

    /// Writes `renderJSON()` to `path`; the file appears only when complete.
    public func write(to path: String) throws(FileAccessError) {
        let writer = try AtomicFileWriter(destination: path)
        try writer.write(Array(renderJSON().utf8))
        try writer.commit()
    }

    /// Reads a report written by `write(to:)` (this or an earlier run).
    /// Throws `FileAccessError` when the file cannot be read, `ReportError` when it is not a report.
    public static func read(path: String) throws -> CompressionReport {
        let file = try MappedFile(path: path)
        return try CompressionReport(decoding: file.bytes, file: path)
    }

    static func jsonValue(of t: TensorRecord) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("name", .string(t.name)), ("shape", .array(t.shape.dimensions.map { .integer($0) })),
            ("dtype_in", .string(t.inputDType)), ("encoding", .string(t.encoding)),
            ("bits_per_weight", .double(t.bitsPerWeight)), ("sparsity", .double(t.sparsity)),
            ("bytes_in", .integer(t.inputByteCount)), ("bytes_out", .integer(t.outputByteCount)),
            ("relative_error", .double(t.relativeError)), ("sqnr_db", .double(t.sqnrDecibels)),
            ("max_abs_error", .double(t.maxAbsoluteError)), ("cosine", .double(t.cosine)),
        ]
        if let e = t.outputRelativeError { members.append(("output_relative_error", .double(e))) }
        return .object(members)
    }
}
