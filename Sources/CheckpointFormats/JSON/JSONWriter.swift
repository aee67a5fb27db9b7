/// Serializes `JSONValue` compactly or indented, deterministically (members in stored order).
///
/// Strings are escaped as serde_json does: `"` and `\` with a backslash, `\n \r \t \b \f` by name,
/// other control characters as `\u00XX`; everything else, non-ASCII included, is written as UTF-8.
public enum JSONWriter {
    /// Compact text, e.g. `{"a":[1,2]}`.
    public static func compact(_ value: JSONValue) -> String {
        var out = ""
        write(value, into: &out, indent: nil, level: 0)
        return out
    }

    /// Indented text (2 spaces), with a trailing newline.
    public static func pretty(_ value: JSONValue) -> String {
        var out = ""
        write(value, into: &out, indent: "  ", level: 0)
        return out + "\n"
    }

    /// A JSON string literal for `s`.
    public static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    private static func write(_ value: JSONValue, into out: inout String, indent: String?, level: Int) {
        let newline = indent.map { "\n" + String(repeating: $0, count: level + 1) } ?? ""
        let closing = indent.map { "\n" + String(repeating: $0, count: level) } ?? ""
        let separator = indent == nil ? ":" : ": "
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n
        case .string(let s): out += quoted(s)
        case .array(let elements):
            if elements.isEmpty { out += "[]"; return }
            if indent != nil, elements.allSatisfy(\.isScalar) {
                out += "[" + elements.map { compact($0) }.joined(separator: ", ") + "]"
                return
            }
            out += "["
            for (i, e) in elements.enumerated() {
                if i > 0 { out += "," }
                out += newline
                write(e, into: &out, indent: indent, level: level + 1)
            }
            out += closing + "]"
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            out += "{"
            for (i, m) in members.enumerated() {
                if i > 0 { out += "," }
                out += newline + quoted(m.key) + separator
                write(m.value, into: &out, indent: indent, level: level + 1)
            }
            out += closing + "}"
        }
    }
}

extension JSONValue {
    /// True for null, booleans, numbers and strings.
    public var isScalar: Bool {
        switch self {
        case .array, .object: false
        default: true
        }
    }

    /// A JSON integer.
    public static func integer<I: BinaryInteger>(_ i: I) -> JSONValue { .number(String(i)) }
    /// A JSON number for a double (shortest round-trip text; non-finite values become null).
    public static func double(_ d: Double) -> JSONValue { d.isFinite ? .number("\(d)") : .null }
}
