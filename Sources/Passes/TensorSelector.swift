import CheckpointFormats

/// Chooses the tensors a step works on from its `targets=` and `ignore=` patterns.
///
/// A pattern is a glob matched against the whole tensor name (`*` any run of characters, `?` one
/// character), or, with the `re:` prefix, a regular expression that must match the whole name.
/// A tensor is selected when it matches some target (or the pass's default rule when `targets` is
/// absent) and no ignore pattern.
public struct TensorSelector: Sendable {
    public enum Pattern: Sendable, CustomStringConvertible {
        case glob(String)
        /// The source text and the expression, compiled once when the selector is built.
        case regex(String, CompiledRegex)

        public var description: String {
            switch self {
            case .glob(let g): g
            case .regex(let r, _): "re:" + r
            }
        }
    }

    /// A compiled regular expression. Regex values are immutable; matching does not mutate them.
    public struct CompiledRegex: @unchecked Sendable {
        let regex: Regex<AnyRegexOutput>
    }

    public let targets: [Pattern]?
    public let ignore: [Pattern]
    /// Used when `targets` is nil: the pass's default selection by name and rank.
    public let defaultRule: @Sendable (_ name: String, _ rank: Int) -> Bool

    /// Builds a selector; returns the text of the first invalid pattern as an error message.
    public init(targets: [String]?, ignore: [String], defaultRule: @escaping @Sendable (String, Int) -> Bool) throws(SelectorError) {
        self.targets = try targets.map { list throws(SelectorError) in try list.map(TensorSelector.pattern) }
        self.ignore = try ignore.map(TensorSelector.pattern)
        self.defaultRule = defaultRule
    }

    static func pattern(_ text: String) throws(SelectorError) -> Pattern {
        if text.hasPrefix("re:") {
            let body = String(text.dropFirst(3))
            guard let regex = try? Regex(body) else { throw SelectorError(pattern: text, message: "invalid regular expression") }
            if let problem = RegexSafety.exponentialBacktracking(in: body) { throw SelectorError(pattern: text, message: "regular expression refused: \(problem)") }
            return .regex(body, CompiledRegex(regex: regex))
        }
        return .glob(text)
    }

    public func selects(name: String, rank: Int) -> Bool {
        let targeted = targets.map { $0.contains { TensorSelector.matches($0, name) } } ?? defaultRule(name, rank)
        return targeted && !ignore.contains { TensorSelector.matches($0, name) }
    }

    static func matches(_ pattern: Pattern, _ name: String) -> Bool {
        switch pattern {
        case .glob(let g): globMatches(Array(g.unicodeScalars), Array(name.unicodeScalars))
        case .regex(_, let compiled): (try? compiled.regex.wholeMatch(in: name)) != nil
        }
    }

    /// Iterative glob matching with backtracking to the last `*` (linear in practice, no recursion).
    static func globMatches(_ p: [Unicode.Scalar], _ s: [Unicode.Scalar]) -> Bool {
        var pi = 0, si = 0, star = -1, mark = 0
        while si < s.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == s[si]) {
                pi += 1; si += 1
            } else if pi < p.count && p[pi] == "*" {
                star = pi; mark = si; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; si = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}

/// An invalid `targets=`/`ignore=` pattern.
public struct SelectorError: Error, Equatable, Sendable, CustomStringConvertible {
    public let pattern: String
    public let message: String
    public var description: String { "\(message): '\(pattern)'" }
}
