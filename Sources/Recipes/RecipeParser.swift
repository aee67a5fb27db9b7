import Foundation

/// Reads recipe files: one step per line, `key=value` options, indented continuation lines, `#`
/// comments, `let name = value` variables expanded where a value is `$name`, `include other.recipe`
/// (relative to the including file), and `--set name=value` overrides of variable defaults.
///
/// Every problem is collected and thrown at once as `RecipeDiagnostics`, each located at
/// `file:line:column`, before anything else happens.
public struct RecipeParser {
    /// Loads an included file's text; nil when it cannot be read.
    public typealias FileLoader = @Sendable (String) -> String?

    /// How many files deep `include` may nest.
    public static let maximumIncludeDepth = 16
    /// How many `include`s one recipe may run in all (each file including the next twice would
    /// otherwise read 2^16 files at the depth limit: a fuzzing finding, a hang).
    public static let maximumIncludeCount = 64

    public static let defaultLoader: FileLoader = { try? String(contentsOfFile: $0, encoding: .utf8) }

    private var diagnostics: [RecipeDiagnostic] = []
    private var steps: [RecipeStep] = []
    private var variables: [RecipeVariable] = []
    private var overrides: [(name: String, text: String)]
    private let loader: FileLoader
    private var includeStack: [String] = []
    private var includeCount = 0

    private init(overrides: [(name: String, text: String)], loader: @escaping FileLoader) {
        self.overrides = overrides
        self.loader = loader
    }

    /// Parses the recipe at `path`. `overrides` are `--set name=value` pairs, in command-line order.
    public static func parse(path: String, overrides: [(name: String, text: String)] = [],
                             loader: @escaping FileLoader = defaultLoader) throws(RecipeDiagnostics) -> Recipe {
        var parser = RecipeParser(overrides: overrides, loader: loader)
        guard let text = loader(path) else {
            throw RecipeDiagnostics([RecipeDiagnostic(SourceLocation(file: path, line: 1, column: 1), "cannot read the recipe file")])
        }
        return try parser.run(text: text, file: path)
    }

    /// Parses recipe text as if read from `file`.
    public static func parse(text: String, file: String = "<recipe>", overrides: [(name: String, text: String)] = [],
                             loader: @escaping FileLoader = defaultLoader) throws(RecipeDiagnostics) -> Recipe {
        var parser = RecipeParser(overrides: overrides, loader: loader)
        return try parser.run(text: text, file: file)
    }

    private mutating func run(text: String, file: String) throws(RecipeDiagnostics) -> Recipe {
        for (name, _) in overrides where !RecipeParser.isIdentifier(name) {
            diagnostics.append(RecipeDiagnostic(SourceLocation(file: "--set", line: 1, column: 1), "'\(name)' is not a variable name"))
        }
        read(text: text, file: file)
        for (name, _) in overrides where !variables.contains(where: { $0.name == name }) {
            let hint = closestMatch(to: name, in: variables.map(\.name)).map { " (did you mean '\($0)'?)" } ?? ""
            diagnostics.append(RecipeDiagnostic(SourceLocation(file: "--set", line: 1, column: 1),
                                                "the recipe has no variable '\(name)'\(hint)"))
        }
        guard diagnostics.allSatisfy({ $0.severity != .error }) else { throw RecipeDiagnostics(diagnostics) }
        return Recipe(steps: steps, variables: variables)
    }

    // MARK: Lines

    private mutating func read(text: String, file: String) {
        includeStack.append(file)
        defer { includeStack.removeLast() }
        var pending: [RecipeLexer.Word]?
        var pendingColumnsLine: [Int] = []     // the line of each pending word
        let physical = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, raw) in physical.enumerated() {
            let (line, problem) = RecipeLexer.lex(String(raw), number: index + 1)
            if let problem { error(SourceLocation(file: file, line: line.number, column: problem.column), problem.message) }
            guard !line.words.isEmpty else { continue }
            if line.indented {
                guard pending != nil else {
                    error(SourceLocation(file: file, line: line.number, column: line.words[0].column),
                          "indented line continues no step (only step lines can be continued)")
                    continue
                }
                pending! += line.words
                pendingColumnsLine += Array(repeating: line.number, count: line.words.count)
                continue
            }
            if let p = pending { statement(p, lines: pendingColumnsLine, file: file) }
            pending = nil
            pendingColumnsLine = []
            let first = line.words[0].text
            if first == "let" || first == "include" {
                statement(line.words, lines: Array(repeating: line.number, count: line.words.count), file: file)
            } else {
                pending = line.words
                pendingColumnsLine = Array(repeating: line.number, count: line.words.count)
            }
        }
        if let p = pending { statement(p, lines: pendingColumnsLine, file: file) }
    }

    private mutating func statement(_ words: [RecipeLexer.Word], lines: [Int], file: String) {
        func at(_ i: Int) -> SourceLocation { SourceLocation(file: file, line: lines[i], column: words[i].column) }
        switch words[0].text {
        case "let": letStatement(words, at: at)
        case "include": includeStatement(words, at: at, file: file)
        default: stepStatement(words, at: at)
        }
    }

    private mutating func letStatement(_ words: [RecipeLexer.Word], at: (Int) -> SourceLocation) {
        guard !words.contains(where: \.unterminated) else { return }
        // Accepted forms: `let name = value` and `let name=value`.
        var name: String, valueText: String, nameIndex = 1, valueIndex: Int
        if words.count == 2, let eq = words[1].text.firstIndex(of: "=") {
            name = String(words[1].text[..<eq])
            valueText = String(words[1].text[words[1].text.index(after: eq)...])
            valueIndex = 1
        } else if words.count == 4, words[2].text == "=" {
            name = words[1].text
            valueText = words[3].text
            valueIndex = 3
        } else {
            error(at(0), "expected 'let NAME = VALUE'")
            return
        }
        if words.count == 2 { nameIndex = 1 }
        guard RecipeParser.isIdentifier(name) else { error(at(nameIndex), "'\(name)' is not a valid variable name"); return }
        guard !valueText.isEmpty else { error(at(valueIndex), "variable '\(name)' has no value"); return }
        if let previous = variables.first(where: { $0.name == name }) {
            error(at(nameIndex), "variable '\(name)' is already defined at \(previous.location)")
            return
        }
        var overridden = false
        var value: RecipeValue
        if let override = overrides.last(where: { $0.name == name }) {
            let location = SourceLocation(file: "--set", line: 1, column: 1)
            guard let parsed = parseValue(override.text, at: location) else { return }
            value = parsed
            overridden = true
        } else {
            guard let parsed = parseValue(valueText, at: at(valueIndex)) else { return }
            value = parsed
        }
        variables.append(RecipeVariable(name: name, value: value, location: at(nameIndex), overridden: overridden, used: false))
    }

    private mutating func includeStatement(_ words: [RecipeLexer.Word], at: (Int) -> SourceLocation, file: String) {
        guard words.count == 2 else { error(at(0), "expected 'include PATH'"); return }
        let target = RecipeLexer.unquote(words[1].text) ?? words[1].text
        let folder = file.lastIndex(of: "/").map { String(file[..<$0]) }
        let path = target.hasPrefix("/") || folder == nil ? target : folder! + "/" + target
        guard !includeStack.contains(path) else {
            error(at(1), "include cycle: \((includeStack + [path]).joined(separator: " -> "))")
            return
        }
        // The same file can come back under ever longer paths (`include sub/../this.recipe`), which
        // the cycle check cannot see: bound the depth (a fuzzing finding, a stack overflow).
        guard includeStack.count < RecipeParser.maximumIncludeDepth else {
            error(at(1), "includes nested more than \(RecipeParser.maximumIncludeDepth) files deep (an include cycle through different paths?)")
            return
        }
        guard includeCount < RecipeParser.maximumIncludeCount else {
            error(at(1), "more than \(RecipeParser.maximumIncludeCount) includes in all")
            return
        }
        includeCount += 1
        guard let text = loader(path) else { error(at(1), "cannot read included recipe '\(path)'"); return }
        read(text: text, file: path)
    }

    private mutating func stepStatement(_ words: [RecipeLexer.Word], at: (Int) -> SourceLocation) {
        let name = words[0].text
        guard RecipeParser.isStepName(name) else {
            error(at(0), "expected a step name such as 'quantize.int', found '\(name)'")
            return
        }
        var options: [RecipeOption] = []
        for i in 1..<words.count where !words[i].unterminated {
            let word = words[i].text
            guard let eq = word.firstIndex(of: "="), eq != word.startIndex else {
                error(at(i), "expected key=value, found '\(word)'")
                continue
            }
            let key = String(word[..<eq])
            let valueText = String(word[word.index(after: eq)...])
            let keyLocation = at(i)
            let valueLocation = SourceLocation(file: keyLocation.file, line: keyLocation.line, column: keyLocation.column + key.count + 1)
            guard RecipeParser.isIdentifier(key) else { error(keyLocation, "'\(key)' is not a valid option name"); continue }
            guard !valueText.isEmpty else { error(valueLocation, "option '\(key)' has no value"); continue }
            if options.contains(where: { $0.key == key }) { error(keyLocation, "option '\(key)' is given twice"); continue }
            guard let value = parseValue(valueText, at: valueLocation) else { continue }
            options.append(RecipeOption(key: key, value: value, location: keyLocation, valueLocation: valueLocation))
        }
        steps.append(RecipeStep(name: name, options: options, location: at(0)))
    }

    // MARK: Values

    /// Parses a value: a quoted string, or bare text split at commas into a list of scalars, where an
    /// item `$name` stands for the variable's value.
    private mutating func parseValue(_ text: String, at location: SourceLocation) -> RecipeValue? {
        if text.first == "\"" {
            guard let s = RecipeLexer.unquote(text) else { error(location, "malformed string \(text)"); return nil }
            return .string(s)
        }
        if text.contains("\"") { error(location, "a quote may only enclose a whole value"); return nil }
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        var values: [RecipeValue] = []
        var offset = 0
        for item in items {
            let itemLocation = SourceLocation(file: location.file, line: location.line, column: location.column + offset)
            offset += item.count + 1
            guard !item.isEmpty else { error(itemLocation, "empty item in a list"); return nil }
            if item.hasPrefix("$"), RecipeParser.isIdentifier(String(item.dropFirst())) {
                guard let value = variableValue(String(item.dropFirst()), at: itemLocation) else { return nil }
                values.append(value)
            } else if item.contains("$") {
                // `group:$g`: substitute each `$name` by the variable's text, then read the scalar.
                guard let text = substitute(item, at: itemLocation) else { return nil }
                values.append(RecipeValue(scalar: text))
            } else {
                values.append(RecipeValue(scalar: item))
            }
        }
        return values.count == 1 ? values[0] : .list(values)
    }

    private mutating func variableValue(_ name: String, at location: SourceLocation) -> RecipeValue? {
        guard let index = variables.firstIndex(where: { $0.name == name }) else {
            let hint = closestMatch(to: name, in: variables.map(\.name)).map { " (did you mean '$\($0)'?)" } ?? ""
            error(location, "undefined variable '$\(name)'\(hint)")
            return nil
        }
        variables[index].used = true
        return variables[index].value
    }

    /// Replaces every `$identifier` in `text` with the variable's value as written in a recipe.
    private mutating func substitute(_ text: String, at location: SourceLocation) -> String? {
        var out = ""
        var chars = Substring(text)
        var column = location.column
        while let dollar = chars.firstIndex(of: "$") {
            out += chars[..<dollar]
            column += chars.distance(from: chars.startIndex, to: dollar)
            let rest = chars[chars.index(after: dollar)...]
            let name = String(rest.prefix { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) })
            let here = SourceLocation(file: location.file, line: location.line, column: column)
            guard !name.isEmpty, RecipeParser.isIdentifier(name) else { error(here, "'$' must be followed by a variable name"); return nil }
            guard let value = variableValue(name, at: here) else { return nil }
            if case .string(let s) = value { out += s } else { out += value.description }
            chars = rest.dropFirst(name.count)
            column += 1 + name.count
        }
        return out + chars
    }

    private mutating func error(_ location: SourceLocation, _ message: String) {
        diagnostics.append(RecipeDiagnostic(location, message))
    }

    static func isIdentifier(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else { return false }
        return s.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
    }

    static func isStepName(_ s: String) -> Bool {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        return !parts.isEmpty && parts.allSatisfy { isIdentifier(String($0)) }
    }
}
