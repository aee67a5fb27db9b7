import CheckpointFormats
import Recipes

/// The points of a sweep: the cartesian product of `--vary name=v1,v2,...` lists, in the order the
/// variables are given (the last one varies fastest).
///
/// Each point has a file-name stem built from its values (`bits=4_group=128`; characters other
/// than letters, digits, `.`, `-`, `=`, `_` become `-`).
public struct SweepPlan: Sendable, Equatable {
    public struct Variable: Sendable, Equatable {
        public let name: String
        public let values: [String]
    }

    public struct Point: Sendable, Equatable {
        public let values: [(name: String, value: String)]

        public static func == (a: Point, b: Point) -> Bool {
            a.values.map(\.name) == b.values.map(\.name) && a.values.map(\.value) == b.values.map(\.value)
        }

        /// `bits=4_group=128`; `sparsity=50%` gives `sparsity=50pct`; other characters outside
        /// letters, digits and `.-=_` become `-`.
        public var stem: String {
            values.map { "\($0.name)=\($0.value)" }.joined(separator: "_").replacingOccurrences(of: "%", with: "pct").map { c in
                c.isLetter || c.isNumber || ".-=_".contains(c) ? c : "-"
            }.reduce(into: "") { $0.append($1) }
        }

        /// `bits=4, group=128`.
        public var label: String { values.map { "\($0.name)=\($0.value)" }.joined(separator: ", ") }
    }

    public let variables: [Variable]

    /// Parses `name=v1,v2` specs. Throws a usage error for a malformed spec, an empty list, a
    /// repeated variable or a repeated value.
    public init(varying specs: [String]) throws(UsageError) {
        guard !specs.isEmpty else { throw UsageError("sweep needs at least one --vary name=v1,v2,...") }
        var variables: [Variable] = []
        for spec in specs {
            guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex else { throw UsageError("--vary expects name=v1,v2,..., got '\(spec)'") }
            let name = String(spec[..<eq])
            let values = spec[spec.index(after: eq)...].split(separator: ",", omittingEmptySubsequences: false).map { String($0) }
            guard !values.isEmpty, !values.contains(where: \.isEmpty) else { throw UsageError("--vary \(name): empty value in '\(spec)'") }
            guard !variables.contains(where: { $0.name == name }) else { throw UsageError("--vary \(name) is given twice") }
            guard Set(values).count == values.count else { throw UsageError("--vary \(name) repeats a value") }
            variables.append(Variable(name: name, values: values))
        }
        self.variables = variables
    }

    /// Every combination, the last variable varying fastest.
    public var points: [Point] {
        var result: [[(name: String, value: String)]] = [[]]
        for variable in variables {
            result = result.flatMap { prefix in variable.values.map { prefix + [(variable.name, $0)] } }
        }
        return result.map(Point.init)
    }

    /// Problems with the recipe at `path`: a varied variable it does not define, or defines but never uses.
    public func check(recipePath path: String) throws {
        let recipe = try RecipeParser.parse(path: path)
        for variable in variables {
            guard let defined = recipe.variables.first(where: { $0.name == variable.name }) else {
                let hint = closestMatch(to: variable.name, in: recipe.variables.map(\.name)).map { " (did you mean '\($0)'?)" } ?? ""
                throw UsageError("--vary \(variable.name): \(path) has no variable '\(variable.name)'\(hint)")
            }
            guard defined.used else { throw UsageError("--vary \(variable.name): \(path) defines '\(variable.name)' but no step uses it") }
        }
    }
}
