/// A parsed JSON value that keeps object members in file order, duplicates included,
/// and numbers as their literal text (so integers of any size are read exactly).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's literal text, e.g. `"12"`, `"-0.5"`, `"1e3"`.
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in file order; a key may repeat (consumers decide whether that is an error).
    case object([(key: String, value: JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case let (.bool(a), .bool(b)): a == b
        case let (.number(a), .number(b)): a == b
        case let (.string(a), .string(b)): a == b
        case let (.array(a), .array(b)): a == b
        case let (.object(a), .object(b)): a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: false
        }
    }

    /// A short name of the value's kind, for error messages.
    public var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// The value as a non-negative integer, if it is written as one (no fraction, no exponent, no sign)
    /// and fits in `Int`.
    public var nonNegativeInt: Int? {
        guard case .number(let text) = self, !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(text)
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var objectMembers: [(key: String, value: JSONValue)]? {
        if case .object(let m) = self { return m }
        return nil
    }

    public var arrayElements: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The first member named `key` of an object.
    public subscript(key: String) -> JSONValue? {
        objectMembers?.first(where: { $0.key == key })?.value
    }
}
