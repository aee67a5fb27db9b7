/// A header row and data rows of text cells, rendered as an aligned plain-text table, a GitHub
/// Markdown table or RFC 4180 CSV. Every report and diff rendering goes through this one type.
struct ReportTable {
    var header: [String]
    var rows: [[String]]
    /// Columns aligned to the right (numbers) in the plain and Markdown forms.
    var rightAligned: Set<Int> = []

    /// Columns padded to their widest cell (counted in characters), two spaces apart, a dashed rule
    /// under the header, one line per row, each ending in `\n`.
    func renderPlain() -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (i, cell) in cells.enumerated() where i < widths.count {
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                parts.append(rightAligned.contains(i) ? pad + cell : (i == widths.count - 1 ? cell : cell + pad))
            }
            return parts.joined(separator: "  ") + "\n"
        }
        return line(header) + line(widths.map { String(repeating: "-", count: $0) }) + rows.map(line).joined()
    }

    /// `| a | b |` rows with a `|---|--:|` alignment row. Cells are escaped with `markdownCell`.
    func renderMarkdown() -> String {
        func line(_ cells: [String]) -> String { "| " + cells.map(ReportTable.markdownCell).joined(separator: " | ") + " |\n" }
        let rule = "|" + header.indices.map { rightAligned.contains($0) ? "---:|" : "---|" }.joined() + "\n"
        return line(header) + rule + rows.map(line).joined()
    }

    /// RFC 4180: fields separated by commas, records ended by CRLF, the header first. A field is
    /// quoted when it holds a comma, a double quote, CR or LF (or starts or ends with a space), and a
    /// quote inside a quoted field is doubled: `a "b",c` becomes `"a ""b"",c"`.
    func renderCSV() -> String {
        ([header] + rows).map { $0.map(ReportTable.csvField).joined(separator: ",") + "\r\n" }.joined()
    }

    /// One CSV field, quoted when needed.
    static func csvField(_ field: String) -> String {
        let needsQuotes = field.unicodeScalars.contains { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" }
            || field.hasPrefix(" ") || field.hasSuffix(" ")
        guard needsQuotes else { return field }
        var out = "\""
        for scalar in field.unicodeScalars {
            if scalar == "\"" { out += "\"\"" } else { out.unicodeScalars.append(scalar) }
        }
        return out + "\""
    }

    /// A Markdown table cell: `|` escaped as `\|` (GFM reads that escape in code spans too), line
    /// breaks as spaces.
    static func markdownCell(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "|": out += "\\|"
            case "\n", "\r": out += " "
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A tensor name as Markdown inline code, so `_` and `*` in names are not read as emphasis; a name
    /// holding a backquote is fenced with two.
    static func markdownCode(_ name: String) -> String {
        name.contains("`") ? "`` " + name + " ``" : "`" + name + "`"
    }
}
