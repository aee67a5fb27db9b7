/// A parsed recipe: its steps in order, with every `$variable` already substituted.
///
/// A step is one line (plus indented continuation lines): a name such as `quantize.int`, then
/// `key=value` options. `let` lines define variables, `include` lines splice in other files.
public struct Recipe: Sendable, Equatable {
    public var steps: [RecipeStep]
    /// Variables in definition order, with their final values (after `--set` overrides).
    public var variables: [RecipeVariable]

    public init(steps: [RecipeStep], variables: [RecipeVariable] = []) {
        self.steps = steps
        self.variables = variables
    }
}

/// One step line of a recipe.
public struct RecipeStep: Sendable, Equatable {
    public let name: String
    public let options: [RecipeOption]
    /// Where the step name stands.
    public let location: SourceLocation

    public init(name: String, options: [RecipeOption], location: SourceLocation) {
        self.name = name
        self.options = options
        self.location = location
    }

    /// The first option named `key`.
    public func option(_ key: String) -> RecipeOption? { options.first { $0.key == key } }
}

/// `key=value` in a step, with where the key stands (for diagnostics).
public struct RecipeOption: Sendable, Equatable {
    public let key: String
    public let value: RecipeValue
    public let location: SourceLocation
    /// Where the value starts.
    public let valueLocation: SourceLocation

    public init(key: String, value: RecipeValue, location: SourceLocation, valueLocation: SourceLocation) {
        self.key = key
        self.value = value
        self.location = location
        self.valueLocation = valueLocation
    }
}

/// `let name = value`, after overrides; `overridden` when `--set` replaced the default.
public struct RecipeVariable: Sendable, Equatable {
    public let name: String
    public let value: RecipeValue
    public let location: SourceLocation
    public let overridden: Bool
    /// True when some step refers to it as `$name`.
    public var used: Bool
}
