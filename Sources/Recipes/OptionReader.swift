/// Reads a step's options by name, with types, defaults and ranges; the same calls, run in
/// describing mode, produce the option list `modelpress passes` prints.
///
/// Problems do not stop reading: each getter records a diagnostic at the value's position and returns
/// the default, so a recipe's errors are all reported at once. `finish()` adds one error per option
/// that no getter asked for ("unknown option 'bitz' for quantize.int (did you mean 'bits'?)").
public struct OptionReader {
    /// One documented option.
    public struct Specification: Sendable, Equatable {
        public let key: String
        public let kind: String
        public let defaultValue: String?
        public let help: String

        public init(key: String, kind: String, defaultValue: String?, help: String) {
            self.key = key
            self.kind = kind
            self.defaultValue = defaultValue
            self.help = help
        }
    }

    public let stepName: String
    private let step: RecipeStep?
    private var consumed: Set<String> = []
    public private(set) var specifications: [Specification] = []
    public private(set) var diagnostics: [RecipeDiagnostic] = []

    /// Reads the options of `step`.
    public init(step: RecipeStep) {
        self.step = step
        self.stepName = step.name
    }

    /// Describing mode: getters return their defaults and only record specifications.
    public init(describing stepName: String) {
        self.step = nil
        self.stepName = stepName
    }

    private mutating func value(_ key: String, kind: String, defaultText: String?, help: String) -> RecipeOption? {
        specifications.append(Specification(key: key, kind: kind, defaultValue: defaultText, help: help))
        consumed.insert(key)
        return step?.option(key)
    }

    private mutating func error(_ option: RecipeOption, _ message: String) {
        diagnostics.append(RecipeDiagnostic(option.valueLocation, "\(stepName) \(option.key): \(message)"))
    }

    /// An integer in `range`.
    public mutating func int(_ key: String, default defaultValue: Int, in range: ClosedRange<Int>, help: String) -> Int {
        guard let option = value(key, kind: "integer \(range.lowerBound)...\(range.upperBound)", defaultText: String(defaultValue), help: help) else { return defaultValue }
        guard case .number(let v) = option.value, v == v.rounded(), let i = Int(exactly: v) else {
            error(option, "expected an integer, found \(option.value.kindName) '\(option.value)'")
            return defaultValue
        }
        guard range.contains(i) else { error(option, "\(i) is out of range \(range.lowerBound)...\(range.upperBound)"); return defaultValue }
        return i
    }

    /// An integer in `range`, or the word `auto` (returned as nil): a setting another step plans.
    public mutating func intOrAuto(_ key: String, default defaultValue: Int, in range: ClosedRange<Int>, help: String) -> Int? {
        guard let option = value(key, kind: "integer \(range.lowerBound)...\(range.upperBound) | auto", defaultText: String(defaultValue), help: help) else { return defaultValue }
        if case .word("auto") = option.value { return nil }
        guard case .number(let v) = option.value, v == v.rounded(), let i = Int(exactly: v) else {
            error(option, "expected an integer or auto, found \(option.value.kindName) '\(option.value)'")
            return defaultValue
        }
        guard range.contains(i) else { error(option, "\(i) is out of range \(range.lowerBound)...\(range.upperBound)"); return defaultValue }
        return i
    }

    /// A number in `range`.
    public mutating func double(_ key: String, default defaultValue: Double, in range: ClosedRange<Double>, help: String) -> Double {
        guard let option = value(key, kind: "number \(range.lowerBound)...\(range.upperBound)", defaultText: "\(defaultValue)", help: help) else { return defaultValue }
        guard case .number(let v) = option.value else { error(option, "expected a number, found \(option.value.kindName) '\(option.value)'"); return defaultValue }
        guard range.contains(v) else { error(option, "\(option.value) is out of range \(range.lowerBound)...\(range.upperBound)"); return defaultValue }
        return v
    }

    /// A fraction in [0, 1], written as `0.5` or `50%`.
    public mutating func fraction(_ key: String, default defaultValue: Double, help: String) -> Double {
        guard let option = value(key, kind: "fraction (0.5 or 50%)", defaultText: "\(defaultValue)", help: help) else { return defaultValue }
        let v: Double
        switch option.value {
        case .number(let x), .percentage(let x): v = x
        default: error(option, "expected a fraction such as 0.5 or 50%, found \(option.value.kindName) '\(option.value)'"); return defaultValue
        }
        guard (0...1).contains(v) else { error(option, "\(option.value) is not between 0 and 1 (0% and 100%)"); return defaultValue }
        return v
    }

    public mutating func bool(_ key: String, default defaultValue: Bool, help: String) -> Bool {
        guard let option = value(key, kind: "true|false", defaultText: String(defaultValue), help: help) else { return defaultValue }
        guard case .bool(let b) = option.value else { error(option, "expected true or false, found \(option.value.kindName) '\(option.value)'"); return defaultValue }
        return b
    }

    /// One of `choices` (a bare word or a string).
    public mutating func choice(_ key: String, default defaultValue: String, from choices: [String], help: String) -> String {
        guard let option = value(key, kind: choices.joined(separator: "|"), defaultText: defaultValue, help: help) else { return defaultValue }
        let text: String
        switch option.value {
        case .word(let w), .string(let w): text = w
        default: text = option.value.description
        }
        guard choices.contains(text) else {
            let hint = closestMatch(to: text, in: choices).map { " (did you mean '\($0)'?)" } ?? ""
            error(option, "'\(text)' is not one of \(choices.joined(separator: ", "))\(hint)")
            return defaultValue
        }
        return text
    }

    /// Any text (a word, string or number as written), or nil when absent.
    public mutating func text(_ key: String, help: String) -> String? {
        guard let option = value(key, kind: "text", defaultText: nil, help: help) else { return nil }
        switch option.value {
        case .word(let w), .string(let w): return w
        case .list: error(option, "expected one value, found a list"); return nil
        default: return option.value.description
        }
    }

    /// A comma list of file paths, each relative to the folder of the recipe file when not absolute.
    public mutating func paths(_ key: String, help: String) -> [String] {
        let items = list(key, help: help)
        guard let file = step?.location.file else { return items }
        return items.map { OptionReader.resolve($0, relativeTo: file) }
    }

    /// `path` as given when absolute, else relative to the folder of `file` (a recipe file).
    public static func resolve(_ path: String, relativeTo file: String) -> String {
        guard !path.hasPrefix("/"), let slash = file.lastIndex(of: "/") else { return path }
        return String(file[...slash]) + path
    }

    /// A comma list of texts: `a,b`, or a string `"a, b"` split at commas (items trimmed).
    public mutating func list(_ key: String, help: String) -> [String] {
        guard let option = value(key, kind: "comma list", defaultText: nil, help: help) else { return [] }
        switch option.value {
        case .list(let items): return items.map { if case .string(let s) = $0 { s } else if case .word(let w) = $0 { w } else { $0.description } }
        case .string(let s): return s.split(separator: ",").map { trimmed($0) }.filter { !$0.isEmpty }
        case .word(let w): return [w]
        default: return [option.value.description]
        }
    }

    /// True when the step writes `key` (for options whose meaning depends on whether they are given).
    public func has(_ key: String) -> Bool { step?.option(key) != nil }

    /// Records a problem with an option's value found after reading it (e.g. a malformed `group:N`).
    public mutating func report(_ key: String, _ message: String) {
        guard let option = step?.option(key) else { return }
        error(option, message)
    }

    /// Records that a required option is absent (at the step's name; nothing in describing mode).
    public mutating func reportMissing(_ key: String, _ message: String) {
        guard let step, step.option(key) == nil else { return }
        diagnostics.append(RecipeDiagnostic(step.location, "\(stepName): \(message)"))
    }

    /// Reports options that no getter read; returns every diagnostic collected.
    public mutating func finish() -> [RecipeDiagnostic] {
        guard let step else { return diagnostics }
        let known = specifications.map(\.key)
        for option in step.options where !consumed.contains(option.key) {
            let hint = closestMatch(to: option.key, in: known).map { " (did you mean '\($0)'?)" } ?? ""
            diagnostics.append(RecipeDiagnostic(option.location, "unknown option '\(option.key)' for \(stepName)\(hint)"))
        }
        return diagnostics
    }
}

/// `text` without leading and trailing spaces and tabs.
private func trimmed(_ text: Substring) -> String {
    var s = text
    while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
    while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
    return String(s)
}
