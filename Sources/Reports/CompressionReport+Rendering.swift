extension CompressionReport {
    /// The CSV columns, in JSON member order; `shape` is written `4096x11008` (empty for a scalar).
    public static let csvColumns = [
        "name", "shape", "dtype_in", "encoding", "bits_per_weight", "sparsity", "bytes_in", "bytes_out",
        "relative_error", "sqnr_db", "max_abs_error", "cosine", "output_relative_error",
    ]

    /// RFC 4180 CSV: the `csvColumns` header, then one record per tensor in report order, CRLF line
    /// ends. Numbers are the shortest round-trip decimals; infinities are `inf` / `-inf` (a lossless
    /// tensor has `sqnr_db` = `inf`), NaN is `nan` (all read by Python's `float`), and a missing
    /// `output_relative_error` is an empty field.
    /// The rendering a file name asks for: CSV for `.csv`, Markdown for `.md`, JSON otherwise.
    public func rendered(forPath path: String) -> String {
        path.hasSuffix(".csv") ? renderCSV() : path.hasSuffix(".md") ? renderMarkdown() : renderJSON()
    }

    public func renderCSV() -> String {
        let rows = tensors.map { t -> [String] in
            [t.name, CompressionReport.shapeText(t.shape.dimensions), t.inputDType, t.encoding,
             NumberText.machine(t.bitsPerWeight), NumberText.machine(t.sparsity), String(t.inputByteCount),
             String(t.outputByteCount), NumberText.machine(t.relativeError), NumberText.machine(t.sqnrDecibels),
             NumberText.machine(t.maxAbsoluteError), NumberText.machine(t.cosine),
             t.outputRelativeError.map(NumberText.machine) ?? ""]
        }
        return ReportTable(header: CompressionReport.csvColumns, rows: rows).renderCSV()
    }

    /// Markdown: a title with the input, output and recipe, a `Totals` table, then a `Tensors` table
    /// (one row per tensor, report order). Errors read `2.470e-02`, SQNR `32.15` dB or `lossless`,
    /// sparsity as a percentage; the output-error column appears when any tensor has one.
    public func renderMarkdown() -> String {
        var out = "# ModelPress report\n\n"
        out += "- input: " + ReportTable.markdownCode(input) + "\n"
        out += "- output: " + ReportTable.markdownCode(output) + "\n"
        out += "- recipe: " + (recipe.map(ReportTable.markdownCode) ?? "none") + "\n"
        out += "- version: " + ReportTable.markdownCell(version) + "\n\n"
        out += "## Totals\n\n" + totalsTable().renderMarkdown() + "\n"
        out += "## Tensors\n\n" + tensorTable(markdown: true).renderMarkdown()
        return out
    }

    /// The text printed at the end of `modelpress compress`: tensor and parameter counts, bytes in and
    /// out, ratio, bits per weight, then the `worstCount` tensors with the largest relative error
    /// (ties by name; exact tensors are left out).
    public func renderSummary(worstCount: Int = 5) -> String {
        let t = totals
        var out = "\(tensors.count) tensors, \(t.parameterCount) parameters\n"
        out += "bytes in:        \(t.inputByteCount) (\(NumberText.bytes(t.inputByteCount)))\n"
        out += "bytes out:       \(t.outputByteCount) (\(NumberText.bytes(t.outputByteCount)))\n"
        out += "ratio:           \(NumberText.ratio(t.ratio))\n"
        out += "bits per weight: \(NumberText.bits(t.bitsPerWeight))\n"
        let worst = worstTensors(count: worstCount)
        if worst.isEmpty {
            out += tensors.isEmpty ? "" : "\nevery tensor is reconstructed exactly (relative error 0)\n"
            return out
        }
        let withOutput = worst.contains { $0.outputRelativeError != nil }
        var header = ["tensor", "encoding", "bits/weight", "relative error", "SQNR (dB)"]
        if withOutput { header.append("output rel. error") }
        let rows = worst.map { r -> [String] in
            var row = [r.name, r.encoding, NumberText.bits(r.bitsPerWeight), NumberText.error(r.relativeError),
                       NumberText.decibels(r.sqnrDecibels)]
            if withOutput { row.append(r.outputRelativeError.map(NumberText.error) ?? "-") }
            return row
        }
        out += "\nworst \(worst.count) by relative error:\n"
        out += ReportTable(header: header, rows: rows, rightAligned: Set(2..<header.count)).renderPlain()
        return out
    }

    /// Up to `count` tensors with relative error above 0 (NaN counts as the worst), largest first,
    /// ties by name.
    public func worstTensors(count: Int) -> [TensorRecord] {
        let lossy = tensors.filter { !($0.relativeError == 0) }
        let sorted = lossy.sorted { a, b in
            let ka = a.relativeError.isNaN ? Double.infinity : a.relativeError
            let kb = b.relativeError.isNaN ? Double.infinity : b.relativeError
            return ka != kb ? ka > kb : a.name < b.name
        }
        return Array(sorted.prefix(max(0, count)))
    }

    /// `4096x11008`; empty for a scalar.
    static func shapeText(_ dimensions: [Int]) -> String { dimensions.map(String.init).joined(separator: "x") }

    private func totalsTable() -> ReportTable {
        let t = totals
        return ReportTable(
            header: ["tensors", "parameters", "bytes in", "bytes out", "ratio", "bits per weight"],
            rows: [[String(tensors.count), String(t.parameterCount),
                    "\(t.inputByteCount) (\(NumberText.bytes(t.inputByteCount)))",
                    "\(t.outputByteCount) (\(NumberText.bytes(t.outputByteCount)))",
                    NumberText.ratio(t.ratio), NumberText.bits(t.bitsPerWeight)]],
            rightAligned: Set(0..<6))
    }

    private func tensorTable(markdown: Bool) -> ReportTable {
        let withOutput = tensors.contains { $0.outputRelativeError != nil }
        var header = ["name", "shape", "dtype in", "encoding", "bits/weight", "sparsity", "bytes in", "bytes out",
                      "relative error", "SQNR (dB)", "max abs error", "cosine"]
        if withOutput { header.append("output rel. error") }
        let rows = tensors.map { t -> [String] in
            var row = [markdown ? ReportTable.markdownCode(t.name) : t.name, t.shape.description, t.inputDType,
                       t.encoding, NumberText.bits(t.bitsPerWeight), NumberText.percent(t.sparsity),
                       String(t.inputByteCount), String(t.outputByteCount), NumberText.error(t.relativeError),
                       NumberText.decibels(t.sqnrDecibels), NumberText.error(t.maxAbsoluteError),
                       NumberText.cosine(t.cosine)]
            if withOutput { row.append(t.outputRelativeError.map(NumberText.error) ?? "-") }
            return row
        }
        return ReportTable(header: header, rows: rows, rightAligned: Set(4..<header.count))
    }
}
