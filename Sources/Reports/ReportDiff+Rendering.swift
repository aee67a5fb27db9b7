import CheckpointFormats

extension ReportDiff {
    /// The output forms of `modelpress diff --format`.
    public enum Format: String, CaseIterable, Sendable {
        case table, json, csv, md
    }

    /// The diff in `format`: `table` for a terminal, `json` and `csv` for programs, `md` for a pull
    /// request. All list the matched tensors in `changes` order, then the unmatched ones.
    public func render(_ format: Format) -> String {
        switch format {
        case .table: renderTable()
        case .json: JSONWriter.pretty(jsonValue)
        case .csv: renderCSV()
        case .md: renderMarkdown()
        }
    }

    /// JSON: `{a: {version, input, output, recipe}, b: {…}, totals: {parameters, bytes_in, bytes_out,
    /// ratio, bits_per_weight: {a, b, change}}, tensors: [{name, encoding: {a, b}, <metric>: {a, b,
    /// change}…}], only_in_a: [name…], only_in_b: [name…]}` with the metrics in `Metric.allCases`
    /// order; `output_relative_error` appears when both reports have it. Non-finite numbers are `null`
    /// (compare the `a` and `b` of the same metric to tell which infinity).
    public var jsonValue: JSONValue {
        func side(_ r: CompressionReport) -> JSONValue {
            .object([("version", .string(r.version)), ("input", .string(r.input)), ("output", .string(r.output)),
                     ("recipe", r.recipe.map { .string($0) } ?? .null)])
        }
        func number(_ x: Double, count: Bool) -> JSONValue {
            count && x.isFinite && x.magnitude < 0x1p62 ? .integer(Int(x.rounded())) : .double(x)
        }
        func triple(_ va: Double, _ vb: Double, count: Bool) -> JSONValue {
            .object([("a", number(va, count: count)), ("b", number(vb, count: count)),
                     ("change", number(ReportDiff.change(from: va, to: vb), count: count))])
        }
        let totals: [(key: String, value: JSONValue)] = totalsRows.map { ($0.key, triple($0.a, $0.b, count: $0.isCount)) }
        let tensors: [JSONValue] = changes.map { c in
            var members: [(key: String, value: JSONValue)] = [
                ("name", .string(c.name)), ("encoding", .object([("a", .string(c.a.encoding)), ("b", .string(c.b.encoding))])),
            ]
            for m in Metric.allCases {
                guard let va = m.value(of: c.a), let vb = m.value(of: c.b) else { continue }
                members.append((m.rawValue, triple(va, vb, count: m.isCount)))
            }
            return .object(members)
        }
        return .object([
            ("a", side(a)), ("b", side(b)), ("totals", .object(totals)), ("tensors", .array(tensors)),
            ("only_in_a", .array(onlyInA.map { .string($0.name) })), ("only_in_b", .array(onlyInB.map { .string($0.name) })),
        ])
    }

    /// RFC 4180 CSV (CRLF line ends): `name,status,encoding_a,encoding_b` then `<metric>_a,<metric>_b,
    /// <metric>_change` for every metric. `status` is `both`, `only_a` or `only_b`; cells a tensor does
    /// not have are empty. Numbers as in `CompressionReport.renderCSV()` (`inf`, `-inf`, `nan`).
    public func renderCSV() -> String {
        var header = ["name", "status", "encoding_a", "encoding_b"]
        for m in Metric.allCases { header += [m.rawValue + "_a", m.rawValue + "_b", m.rawValue + "_change"] }
        func cells(_ a: TensorRecord?, _ b: TensorRecord?) -> [String] {
            var row: [String] = []
            for m in Metric.allCases {
                let va = a.flatMap(m.value(of:)), vb = b.flatMap(m.value(of:))
                let change = va.flatMap { x in vb.map { ReportDiff.change(from: x, to: $0) } }
                row += [va, vb, change].map { $0.map(NumberText.machine) ?? "" }
            }
            return row
        }
        var rows = changes.map { [$0.name, "both", $0.a.encoding, $0.b.encoding] + cells($0.a, $0.b) }
        rows += onlyInA.map { [$0.name, "only_a", $0.encoding, ""] + cells($0, nil) }
        rows += onlyInB.map { [$0.name, "only_b", "", $0.encoding] + cells(nil, $0) }
        return ReportTable(header: header, rows: rows).renderCSV()
    }

    /// Plain text for a terminal: the two outputs, a totals table (A, B, change), the matched tensors
    /// (largest regression first) and the unmatched names.
    public func renderTable() -> String {
        var out = "A: \(a.output)\nB: \(b.output)\n\n"
        out += totalsTable().renderPlain()
        out += "\n\(changes.count) tensors in both, largest relative-error regression first:\n"
        out += tensorTable(markdown: false).renderPlain()
        for (label, records) in [("A", onlyInA), ("B", onlyInB)] where !records.isEmpty {
            out += "\nonly in \(label) (\(records.count)):\n" + records.map { "  \($0.name)\n" }.joined()
        }
        return out
    }

    /// GitHub Markdown: the two outputs, `Totals` and `Tensors` tables, and `Only in A` / `Only in B`
    /// lists.
    public func renderMarkdown() -> String {
        var out = "# ModelPress report diff\n\n"
        out += "- A: " + ReportTable.markdownCode(a.output) + "\n- B: " + ReportTable.markdownCode(b.output) + "\n\n"
        out += "## Totals\n\n" + totalsTable().renderMarkdown()
        out += "\n## Tensors\n\nLargest relative-error regression first.\n\n" + tensorTable(markdown: true).renderMarkdown()
        for (label, records) in [("A", onlyInA), ("B", onlyInB)] where !records.isEmpty {
            out += "\n## Only in \(label)\n\n" + records.map { "- " + ReportTable.markdownCode($0.name) + "\n" }.joined()
        }
        return out
    }

    /// `(key, A, B, is a count)` for each total, in JSON order.
    private var totalsRows: [(key: String, a: Double, b: Double, isCount: Bool)] {
        let ta = a.totals, tb = b.totals
        return [("parameters", Double(ta.parameterCount), Double(tb.parameterCount), true),
                ("bytes_in", Double(ta.inputByteCount), Double(tb.inputByteCount), true),
                ("bytes_out", Double(ta.outputByteCount), Double(tb.outputByteCount), true),
                ("ratio", ta.ratio, tb.ratio, false),
                ("bits_per_weight", ta.bitsPerWeight, tb.bitsPerWeight, false)]
    }

    private func totalsTable() -> ReportTable {
        let rows = totalsRows.map { row -> [String] in
            let change = ReportDiff.change(from: row.a, to: row.b)
            if row.isCount {
                let changeText = NumberText.signed(change) { (x: Double) -> String in NumberText.integer(x) }
                return [row.key, NumberText.integer(row.a), NumberText.integer(row.b), changeText]
            }
            let isRatio = row.key == "ratio"
            let valueA = isRatio ? NumberText.ratio(row.a) : NumberText.bits(row.a)
            let valueB = isRatio ? NumberText.ratio(row.b) : NumberText.bits(row.b)
            let changeText = NumberText.signed(change) { (x: Double) -> String in NumberText.fixed(x, decimals: 3) }
            return [row.key, valueA, valueB, changeText]
        }
        return ReportTable(header: ["total", "A", "B", "change"], rows: rows, rightAligned: [1, 2, 3])
    }

    private func tensorTable(markdown: Bool) -> ReportTable {
        let header = ["tensor", "encoding", "relative error A", "relative error B", "change", "SQNR change (dB)",
                      "bits/weight change"]
        let rows = changes.map { c -> [String] in
            let encoding = c.a.encoding == c.b.encoding ? c.a.encoding : c.a.encoding + " -> " + c.b.encoding
            return [markdown ? ReportTable.markdownCode(c.name) : c.name, encoding,
                    Metric.relativeError.human(c.a.relativeError), Metric.relativeError.human(c.b.relativeError),
                    Metric.relativeError.humanChange(c.relativeErrorChange),
                    Metric.sqnrDecibels.humanChange(c.change(.sqnrDecibels)!),
                    Metric.bitsPerWeight.humanChange(c.change(.bitsPerWeight)!)]
        }
        return ReportTable(header: header, rows: rows, rightAligned: Set(2..<header.count))
    }
}
