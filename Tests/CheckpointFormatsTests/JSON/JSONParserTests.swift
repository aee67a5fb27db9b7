import Testing
import TensorCore
import CheckpointFormats

/// The strict RFC 8259 parser that reads safetensors headers and sharded indexes.
@Suite("JSONParser")
struct JSONParserTests {
    private func parse(_ text: String) throws(JSONError) -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    // MARK: Valid documents

    @Test("simple escapes decode")
    func escapes() throws {
        #expect(try parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{08}\u{0C}\n\r\t"))
        #expect(try parse(#""plain é 模 😀""#) == .string("plain é 模 😀"))
        #expect(try parse(#""""#) == .string(""))
    }

    @Test("\\u escapes decode, surrogate pairs included")
    func unicodeEscapes() throws {
        #expect(try parse(#""\u0041\u00e9\u00E9\u6a21""#) == .string("Aéé模"))
        #expect(try parse(#""\uD83D\uDE00""#) == .string("😀"))
        #expect(try parse(#""\ud83d\ude00x""#) == .string("😀x"))
        #expect(try parse(#""\uDBFF\uDFFF""#) == .string("\u{10FFFF}"))
        #expect(try parse(#""\u0000""#) == .string("\u{0}"))
        #expect(try parse(#""\uFFFF""#) == .string("\u{FFFF}"))
    }

    @Test("nested values, whitespace around and inside")
    func nested() throws {
        let value = try parse(" \n\t{ \"a\" : [ 1 , { \"b\" : null } , [ ] , { } ] , \"c\" : true , \"d\" : false }\r\n ")
        #expect(value == .object([
            ("a", .array([.number("1"), .object([("b", .null)]), .array([]), .object([])])),
            ("c", .bool(true)),
            ("d", .bool(false)),
        ]))
        #expect(value["a"]?.arrayElements?.count == 4)
        #expect(value["missing"] == nil)
        #expect(try parse("[]") == .array([]))
        #expect(try parse("{}") == .object([]))
    }

    @Test("top-level scalars are documents")
    func scalars() throws {
        #expect(try parse("null") == .null)
        #expect(try parse(" true ") == .bool(true))
        #expect(try parse("-1.5e+3") == .number("-1.5e+3"))
        #expect(try parse(#""x""#) == .string("x"))
    }

    @Test("numbers are kept as their literal text")
    func numbers() throws {
        let value = try parse("[0, -0, 12345678901234567890123, 1.50, 1e400, -2E-3, 10, 0.0]")
        #expect(value == .array(["0", "-0", "12345678901234567890123", "1.50", "1e400", "-2E-3", "10", "0.0"].map(JSONValue.number)))
        #expect(JSONValue.number("18446744073709551616").nonNegativeInt == nil)
        #expect(JSONValue.number("9223372036854775807").nonNegativeInt == Int.max)
        #expect(JSONValue.number("-0").nonNegativeInt == nil)
        #expect(JSONValue.number("1.0").nonNegativeInt == nil)
    }

    @Test("duplicate keys are preserved in order; the subscript finds the first")
    func duplicateKeys() throws {
        let value = try parse(#"{"a":1,"b":2,"a":3}"#)
        #expect(value == .object([("a", .number("1")), ("b", .number("2")), ("a", .number("3"))]))
        #expect(value["a"] == .number("1"))
        #expect(value.objectMembers?.map(\.key) == ["a", "b", "a"])
    }

    @Test("an object differs from one with its members reordered")
    func memberOrderMatters() throws {
        #expect(try parse(#"{"a":1,"b":2}"#) != parse(#"{"b":2,"a":1}"#))
    }

    // MARK: Invalid documents

    struct Bad: Sendable, CustomTestStringConvertible {
        let label: String
        let bytes: [UInt8]
        let message: String
        let offset: Int
        init(_ label: String, _ text: String, _ message: String, at offset: Int) {
            self.init(label, Array(text.utf8), message, at: offset)
        }
        init(_ label: String, _ bytes: [UInt8], _ message: String, at offset: Int) {
            self.label = label
            self.bytes = bytes
            self.message = message
            self.offset = offset
        }
        var testDescription: String { label }
    }

    static let bad: [Bad] = [
        Bad("leading zero", "01", "leading zero in a number", at: 1),
        Bad("negative leading zero", "-01", "leading zero in a number", at: 2),
        Bad("leading zero in an array", "[00]", "leading zero in a number", at: 2),
        Bad("lone high surrogate at the end", #""\uD800""#, "lone surrogate in a \\u escape", at: 7),
        Bad("high surrogate then a letter", #""\uD800x""#, "lone surrogate in a \\u escape", at: 7),
        Bad("high surrogate then a non-surrogate", #""\uD800\u0041""#, "lone surrogate in a \\u escape", at: 13),
        Bad("two high surrogates", #""\uD800\uD800""#, "lone surrogate in a \\u escape", at: 13),
        Bad("lone low surrogate", #""\uDC00""#, "lone surrogate in a \\u escape", at: 7),
        Bad("raw newline in a string", "\"a\nb\"", "unescaped control character in a string", at: 2),
        Bad("raw NUL in a string", "\"\0\"", "unescaped control character in a string", at: 1),
        Bad("raw tab in a string", "\"\t\"", "unescaped control character in a string", at: 1),
        Bad("trailing garbage", "{} x", "unexpected text after the JSON value", at: 3),
        Bad("extra bracket", "[1]]", "unexpected text after the JSON value", at: 3),
        Bad("two values", "1 2", "unexpected text after the JSON value", at: 2),
        Bad("unterminated string", #""abc"#, "unterminated string", at: 4),
        Bad("unterminated escape", #""abc\"#, "unterminated escape", at: 5),
        Bad("unterminated array", "[1,2", "unexpected end of input in an array", at: 4),
        Bad("unterminated object", #"{"a":1"#, "unexpected end of input in an object", at: 6),
        Bad("object ends after a colon", #"{"a":"#, "unexpected end of input", at: 5),
        Bad("empty document", "", "unexpected end of input", at: 0),
        Bad("only whitespace", " \n ", "unexpected end of input", at: 3),
        Bad("invalid escape", #""\x""#, "invalid escape", at: 3),
        Bad("bad hex in \\u", #""\u12G4""#, "invalid \\u escape", at: 5),
        Bad("short \\u at the end", #""\u12"#, "unexpected end of input in a \\u escape", at: 3),
        Bad("truncated literal", "tru", "unexpected end of input", at: 0),
        Bad("misspelt literal", "trUe", "invalid literal", at: 0),
        Bad("capitalised literal", "Null", "unexpected character", at: 0),
        Bad("trailing comma in an array", "[1,]", "unexpected character", at: 3),
        Bad("trailing comma in an object", #"{"a":1,}"#, "expected a string key", at: 7),
        Bad("single-quoted key", "{'a':1}", "expected a string key", at: 1),
        Bad("unquoted key", "{a:1}", "expected a string key", at: 1),
        Bad("missing colon", #"{"a" 1}"#, "expected ':'", at: 5),
        Bad("missing comma", "[1 2]", "expected ',' or ']'", at: 3),
        Bad("missing comma in an object", #"{"a":1 "b":2}"#, "expected ',' or '}'", at: 7),
        Bad("comment", "[1 /* c */]", "expected ',' or ']'", at: 3),
        Bad("NaN", "NaN", "unexpected character", at: 0),
        Bad("Infinity", "-Infinity", "invalid number", at: 1),
        Bad("lone minus", "-", "invalid number", at: 1),
        Bad("plus sign", "+1", "unexpected character", at: 0),
        Bad("fraction without digits", "1.", "invalid number", at: 2),
        Bad("fraction without integer part", ".5", "unexpected character", at: 0),
        Bad("exponent without digits", "1e", "invalid number", at: 2),
        Bad("exponent sign without digits", "1e+", "invalid number", at: 3),
        Bad("hex number", "0x10", "unexpected text after the JSON value", at: 1),
        Bad("invalid UTF-8 in a string", [0x22, 0xFF, 0x22], "invalid UTF-8 in a string", at: 3),
        Bad("surrogate encoded in UTF-8", [0x22, 0xED, 0xA0, 0x80, 0x22], "invalid UTF-8 in a string", at: 5),
        Bad("invalid UTF-8 outside a string", [0x5B, 0xC3, 0x5D], "unexpected character", at: 1),
    ]

    @Test("invalid documents are rejected with the message and byte offset", arguments: bad)
    func invalid(_ c: Bad) {
        #expect(throws: JSONError(message: c.message, offset: c.offset)) { try JSONParser.parse(c.bytes) }
    }

    @Test("an empty buffer without a base address is an error, not a crash")
    func emptyBuffer() {
        #expect(throws: JSONError(message: "unexpected end of input", offset: 0)) {
            try JSONParser.parse(UnsafeRawBufferPointer(start: nil, count: 0))
        }
    }

    @Test("the error describes itself with its byte offset")
    func errorDescription() {
        #expect(JSONError(message: "invalid escape", offset: 3).description == "invalid escape at byte 3")
    }

    // MARK: Depth limit

    @Test("64 levels of nesting are accepted, 65 are not")
    func depthBoundary() throws {
        let depth = JSONParser.maximumDepth
        #expect(depth == 64)
        let deepest = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        var value = try parse(deepest)
        var levels = 0
        while let elements = value.arrayElements {
            levels += 1
            guard let first = elements.first else { break }
            value = first
        }
        #expect(levels == depth)
        let tooDeep = String(repeating: "[", count: depth + 1) + String(repeating: "]", count: depth + 1)
        #expect(throws: JSONError(message: "nesting deeper than 64 levels", offset: 64)) { try parse(tooDeep) }
        // Objects count the same way, and a scalar member is a level too: 63 objects around a number
        // fill the 64 levels; 64 objects around it do not fit.
        let objects = String(repeating: #"{"a":"#, count: depth - 1) + "1" + String(repeating: "}", count: depth - 1)
        #expect(throws: Never.self) { try parse(objects) }
        let tooManyObjects = String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
        #expect(throws: JSONError(message: "nesting deeper than 64 levels", offset: 5 * depth)) { try parse(tooManyObjects) }
    }

    @Test("100,000 levels of nesting throw instead of overflowing the stack")
    func hostileDepth() {
        #expect(throws: JSONError(message: "nesting deeper than 64 levels", offset: 64)) {
            try parse(String(repeating: "[", count: 100_000))
        }
        #expect(throws: JSONError(message: "nesting deeper than 64 levels", offset: 64)) {
            try parse(String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000))
        }
        #expect(throws: JSONError(message: "nesting deeper than 64 levels", offset: 320)) {
            try parse(String(repeating: #"{"a":"#, count: 100_000))
        }
        // '[' and '{' alternate, 5 bytes per pair: the '[' at depth 64 is the 33rd, at byte 160.
        #expect(throws: JSONError(message: "nesting deeper than 64 levels", offset: 160)) {
            try parse(String(repeating: #"[{"":"#, count: 100_000))
        }
    }

    // MARK: Robustness

    @Test("seeded random mutations of a document never crash and re-parse consistently", arguments: 0..<4)
    func mutations(seed: Int) throws {
        let text = Array(#" {"a":[1,-2.5e+3,true,false,null,{"b":"\u00e9\uD83D\uDE00\n"}],"c":{},"d":[[]],"e":"模"} "#.utf8)
        let interesting: [UInt8] = Array(#"{}[]",:0123456789-+.eE \/u"#.utf8) + [0x09, 0x00, 0x1F, 0x7F, 0x80, 0xC3, 0xED, 0xFF]
        var rng = SeededGenerator(seed: UInt64(seed) + 77)
        for _ in 0..<1000 {
            var bytes = text
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let i = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 3 {
                case 0: bytes[i] = interesting[Int(rng.next() % UInt64(interesting.count))]
                case 1: bytes.remove(at: i)
                default: bytes.insert(interesting[Int(rng.next() % UInt64(interesting.count))], at: i)
                }
                if bytes.isEmpty { bytes = [0x20] }
            }
            do {
                let value = try JSONParser.parse(bytes)
                // Whatever was accepted survives a write/parse round trip unchanged.
                #expect(try JSONParser.parse(Array(JSONWriter.compact(value).utf8)) == value)
            } catch {
                #expect(error.offset >= 0 && error.offset <= bytes.count)
            }
        }
    }

    @Test("long flat documents are fine (depth is not length)")
    func wideDocument() throws {
        let n = 100_000
        let value = try parse("[" + Array(repeating: "0", count: n).joined(separator: ",") + "]")
        #expect(value.arrayElements?.count == n)
    }
}
