/// A strict RFC 8259 JSON parser over UTF-8 bytes.
///
/// Rejects trailing commas, comments, leading zeros, unescaped control characters, lone surrogates,
/// invalid UTF-8, nesting deeper than `maximumDepth` (so hostile input cannot exhaust the stack) and
/// documents longer than `maximumLength` (so a huge file cannot make the parsed values exhaust memory).
/// Whitespace may surround the top-level value.
public struct JSONParser {
    public static let maximumDepth = 64
    /// The longest document parsed: the safetensors header limit, far above any index, config or record.
    public static let maximumLength = 100_000_000

    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    private init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Parses one JSON document.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONError) -> JSONValue {
        guard bytes.count <= maximumLength else {
            throw JSONError(message: "document of \(bytes.count) bytes is longer than the \(maximumLength) bytes read", offset: 0)
        }
        var parser = JSONParser(bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.error("unexpected text after the JSON value") }
        return value
    }

    /// Parses one JSON document from a byte array.
    public static func parse(_ bytes: [UInt8]) throws(JSONError) -> JSONValue {
        do {
            return try bytes.withUnsafeBytes { try parse($0) }
        } catch let e as JSONError { throw e } catch { fatalError("unreachable") }
    }

    private func error(_ message: String) -> JSONError { JSONError(message: message, offset: position) }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipWhitespace() {
        while let c = current, c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { position += 1 }
    }

    private mutating func expect(_ literal: StaticString) throws(JSONError) {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw error("unexpected end of input") }
        for i in 0..<count where bytes[position + i] != literal.utf8Start[i] { throw error("invalid literal") }
        position += count
    }

    private mutating func parseValue(depth: Int) throws(JSONError) -> JSONValue {
        guard depth < JSONParser.maximumDepth else { throw error("nesting deeper than \(JSONParser.maximumDepth) levels") }
        guard let c = current else { throw error("unexpected end of input") }
        switch c {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw error("unexpected character")
        }
    }

    private mutating func parseObject(depth: Int) throws(JSONError) -> JSONValue {
        position += 1
        var members: [(key: String, value: JSONValue)] = []
        skipWhitespace()
        if current == UInt8(ascii: "}") { position += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw error("expected ':'") }
            position += 1
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            members.append((key, value))
            skipWhitespace()
            guard let c = current else { throw error("unexpected end of input in an object") }
            position += 1
            if c == UInt8(ascii: "}") { return .object(members) }
            guard c == UInt8(ascii: ",") else { position -= 1; throw error("expected ',' or '}'") }
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONError) -> JSONValue {
        position += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") { position += 1; return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard let c = current else { throw error("unexpected end of input in an array") }
            position += 1
            if c == UInt8(ascii: "]") { return .array(elements) }
            guard c == UInt8(ascii: ",") else { position -= 1; throw error("expected ',' or ']'") }
        }
    }

    private mutating func parseNumber() throws(JSONError) -> String {
        let start = position
        func digit(_ c: UInt8?) -> Bool { c.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
        if current == UInt8(ascii: "-") { position += 1 }
        guard digit(current) else { throw error("invalid number") }
        if current == UInt8(ascii: "0") {
            position += 1
            if digit(current) { throw error("leading zero in a number") }
        } else {
            while digit(current) { position += 1 }
        }
        if current == UInt8(ascii: ".") {
            position += 1
            guard digit(current) else { throw error("invalid number") }
            while digit(current) { position += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard digit(current) else { throw error("invalid number") }
            while digit(current) { position += 1 }
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
    }

    private mutating func parseHex4() throws(JSONError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("unexpected end of input in a \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[position]
            let digit: UInt32
            switch c {
            case 0x30...0x39: digit = UInt32(c - 0x30)
            case 0x41...0x46: digit = UInt32(c - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(c - 0x61 + 10)
            default: throw error("invalid \\u escape")
            }
            value = value * 16 + digit
            position += 1
        }
        return value
    }

    private mutating func parseString() throws(JSONError) -> String {
        position += 1
        var out: [UInt8] = []
        var runStart = position
        while true {
            guard let c = current else { throw error("unterminated string") }
            if c == UInt8(ascii: "\"") {
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<position]))
                position += 1
                break
            }
            if c < 0x20 { throw error("unescaped control character in a string") }
            if c != UInt8(ascii: "\\") { position += 1; continue }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<position]))
            position += 1
            guard let e = current else { throw error("unterminated escape") }
            position += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try parseHex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard position + 2 <= bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u")
                    else { throw error("lone surrogate in a \\u escape") }
                    position += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw error("lone surrogate in a \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw error("lone surrogate in a \\u escape")
                }
                out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
            default:
                throw error("invalid escape")
            }
            runStart = position
        }
        guard let string = String(validating: out, as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
        return string
    }
}

/// A JSON syntax error at a byte offset of the document.
public struct JSONError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public let offset: Int
    public init(message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }
    public var description: String { "\(message) at byte \(offset)" }
}
