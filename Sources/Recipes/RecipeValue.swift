/// A value in a recipe: what follows `key=` or `let name =`.
///
/// Spellings: numbers (`4`, `0.5`, `1e-3`), percentages (`50%`, stored as the fraction 0.5),
/// booleans (`true`, `false`), bare words (`channel`, `group:128`, `2:4`, `*.mlp.*`), double-quoted
/// strings (`"a, b"`, with `\"`, `\\`, `\n`, `\t` escapes) and comma lists of those (`2,3,4`).
public enum RecipeValue: Sendable, Equatable, CustomStringConvertible {
    case number(Double)
    case percentage(Double)
    case bool(Bool)
    case word(String)
    case string(String)
    case list([RecipeValue])

    /// Parses one unquoted scalar token.
    public init(scalar text: String) {
        if text == "true" { self = .bool(true); return }
        if text == "false" { self = .bool(false); return }
        // "99.9%" is read as the decimal "99.9e-2", so the fraction is the double nearest 0.999
        // (dividing by 100 would add a rounding step).
        if text.hasSuffix("%"), RecipeValue.decimal(String(text.dropLast())) != nil,
           !text.dropLast().contains(where: { $0 == "e" || $0 == "E" }), let v = Double(text.dropLast() + "e-2") {
            self = .percentage(v)
            return
        }
        if let v = RecipeValue.decimal(text) { self = .number(v); return }
        self = .word(text)
    }

    /// A strict decimal number: optional sign, digits, optional fraction and exponent.
    static func decimal(_ text: String) -> Double? {
        var chars = Substring(text)
        if chars.first == "-" || chars.first == "+" { chars = chars.dropFirst() }
        let digits = chars.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else { return nil }
        var rest = chars.dropFirst(digits.count)
        if rest.first == "." {
            let fraction = rest.dropFirst().prefix { $0.isASCII && $0.isNumber }
            guard !fraction.isEmpty else { return nil }
            rest = rest.dropFirst(1 + fraction.count)
        }
        if rest.first == "e" || rest.first == "E" {
            var exponent = rest.dropFirst()
            if exponent.first == "-" || exponent.first == "+" { exponent = exponent.dropFirst() }
            let digits = exponent.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty else { return nil }
            rest = exponent.dropFirst(digits.count)
        }
        guard rest.isEmpty, let value = Double(text), value.isFinite else { return nil }
        return value
    }

    /// How the value reads in a recipe (strings quoted, lists comma-joined).
    public var description: String {
        switch self {
        case .number(let v): v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
        case .percentage(let v): RecipeValue.number(v * 100).description + "%"
        case .bool(let b): b ? "true" : "false"
        case .word(let w): w
        case .string(let s): "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        case .list(let items): items.map(\.description).joined(separator: ",")
        }
    }

    /// A short name of the value's kind for messages ("a number", "a word", ...).
    public var kindName: String {
        switch self {
        case .number: "a number"
        case .percentage: "a percentage"
        case .bool: "a boolean"
        case .word: "a word"
        case .string: "a string"
        case .list: "a list"
        }
    }
}
