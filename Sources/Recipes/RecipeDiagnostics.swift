/// One problem in a recipe, printed compiler style: `file:line:col: error: message`.
public struct RecipeDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning }

    public let location: SourceLocation
    public let severity: Severity
    public let message: String

    public init(_ location: SourceLocation, _ message: String, severity: Severity = .error) {
        self.location = location
        self.message = message
        self.severity = severity
    }

    public var description: String { "\(location): \(severity.rawValue): \(message)" }
}

/// Every problem found in a recipe (never empty when thrown). Reading a recipe reports all of them
/// at once, before any weight is read.
public struct RecipeDiagnostics: Error, Sendable, Equatable, CustomStringConvertible {
    public let diagnostics: [RecipeDiagnostic]

    public init(_ diagnostics: [RecipeDiagnostic]) { self.diagnostics = diagnostics }

    public var errors: [RecipeDiagnostic] { diagnostics.filter { $0.severity == .error } }

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Closest candidate by edit distance, for "did you mean ...?" hints (nil when nothing is close).
public func closestMatch(to word: String, in candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    return best.1 <= max(2, word.count / 3) ? best.0 : nil
}

/// Levenshtein distance between two strings (by Unicode scalars).
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

import TensorCore
/// A bad recipe is bad input data (exit 65).
extension RecipeDiagnostics: InputDataError {}
