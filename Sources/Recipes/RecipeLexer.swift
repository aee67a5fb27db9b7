/// Splits recipe lines into whitespace-separated words, honouring double quotes and `#` comments.
///
/// A word runs until whitespace outside quotes, so `ignore="a, b"` is one word. `#` outside quotes
/// starts a comment. Columns are 1-based character positions.
struct RecipeLexer {
    struct Word: Equatable {
        let text: String
        let column: Int
        /// A quote opened in this word is never closed (already reported by the lexer).
        var unterminated = false
    }

    struct Line {
        let number: Int
        let indented: Bool
        let words: [Word]
    }

    /// Lexes one physical line; an unterminated quote is reported at its column.
    static func lex(_ line: String, number: Int) -> (Line, (column: Int, message: String)?) {
        let chars = Array(line)
        var words: [Word] = []
        var i = 0
        var problem: (Int, String)?
        let indented = chars.first == " " || chars.first == "\t"
        while i < chars.count {
            while i < chars.count, chars[i] == " " || chars[i] == "\t" || chars[i] == "\r" { i += 1 }
            guard i < chars.count, chars[i] != "#" else { break }
            let start = i
            var text = ""
            var inQuotes = false
            var quoteStart = 0
            while i < chars.count {
                let c = chars[i]
                if inQuotes {
                    text.append(c)
                    if c == "\\", i + 1 < chars.count { text.append(chars[i + 1]); i += 2; continue }
                    if c == "\"" { inQuotes = false }
                } else {
                    if c == " " || c == "\t" || c == "\r" || c == "#" { break }
                    if c == "\"" { inQuotes = true; quoteStart = i }
                    text.append(c)
                }
                i += 1
            }
            if inQuotes, problem == nil { problem = (quoteStart + 1, "unterminated string") }
            words.append(Word(text: text, column: start + 1, unterminated: inQuotes))
        }
        return (Line(number: number, indented: indented, words: words), problem.map { (column: $0.0, message: $0.1) })
    }

    /// Decodes a quoted string literal (`"..."` with `\"`, `\\`, `\n`, `\t`); nil if malformed.
    static func unquote(_ text: String) -> String? {
        guard text.count >= 2, text.first == "\"", text.last == "\"" else { return nil }
        var out = ""
        var escaped = false
        for c in text.dropFirst().dropLast() {
            if escaped {
                switch c {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "\"", "\\": out.append(c)
                default: return nil
                }
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else if c == "\"" {
                return nil
            } else {
                out.append(c)
            }
        }
        return escaped ? nil : out
    }
}
