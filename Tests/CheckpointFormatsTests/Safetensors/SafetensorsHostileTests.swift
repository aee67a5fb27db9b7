import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// Hostile safetensors inputs: every check of the reference reader (formats.md §6.2), each with the
/// exact error it must produce, plus the cases the reference tolerates and we must accept.
///
/// Every rejected input is checked twice: parsed from memory (`SafetensorsHeader`) and opened from a
/// file (`SafetensorsReader.open`, which memory-maps it), where the error must name that file.
@Suite("Safetensors hostile input")
struct SafetensorsHostileTests {
    // MARK: Helpers

    /// Asserts that `bytes` are rejected with exactly `kind`, both in memory and from a file.
    private func expectRejected(_ bytes: [UInt8], _ kind: SafetensorsError.Kind,
                                sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(throws: SafetensorsError(file: "memory.safetensors", kind: kind), sourceLocation: sourceLocation) {
            try SafetensorsBytes.parse(bytes)
        }
        let dir = try TemporaryDirectory(prefix: "st-hostile")
        let path = try dir.write(bytes, to: "hostile.safetensors")
        #expect(throws: SafetensorsError(file: path, kind: kind), sourceLocation: sourceLocation) {
            try SafetensorsReader.open(path: path)
        }
    }

    /// Asserts that `bytes` are accepted from a file and returns the checkpoint.
    private func accepted(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws -> Checkpoint {
        let header = try SafetensorsBytes.parse(bytes)
        let dir = try TemporaryDirectory(prefix: "st-ok")
        let path = try dir.write(bytes, to: "ok.safetensors")
        let checkpoint = try SafetensorsReader.open(path: path)
        #expect(checkpoint.entries.map(\.name) == header.tensors.map(\.name), sourceLocation: sourceLocation)
        return checkpoint
    }

    private func dense(_ checkpoint: Checkpoint, _ name: String) throws -> DenseTensor { try denseTensor(checkpoint, name) }

    private func e(_ name: String, _ dtype: String, _ shape: [Int], _ begin: Int, _ end: Int) -> String {
        SafetensorsBytes.entry(name, dtype, shape, begin, end)
    }

    private func h(_ members: String...) -> String { "{" + members.joined(separator: ",") + "}" }

    // MARK: Length prefix

    @Test("an empty file is headerTooSmall")
    func emptyFile() throws {
        try expectRejected([], .headerTooSmall(fileSize: 0))
    }

    @Test("a 7-byte file is headerTooSmall")
    func sevenBytes() throws {
        try expectRejected([8, 0, 0, 0, 0, 0, 0], .headerTooSmall(fileSize: 7))
    }

    @Test("a length prefix of 0 leaves an empty header, which is not JSON")
    func zeroLengthHeader() throws {
        try expectRejected(SafetensorsBytes.lengthPrefix(0), .invalidJSON("unexpected end of input at byte 0"))
    }

    @Test("a length prefix past the end of the file is invalidHeaderLength")
    func lengthPastEnd() throws {
        try expectRejected(SafetensorsBytes.lengthPrefix(100, then: Array("{}".utf8)), .invalidHeaderLength(length: 100, fileSize: 10))
        // One byte short.
        try expectRejected(SafetensorsBytes.lengthPrefix(3, then: Array("{}".utf8)), .invalidHeaderLength(length: 3, fileSize: 10))
        // Exactly the limit is not "too large", only too long for this file.
        try expectRejected(SafetensorsBytes.lengthPrefix(100_000_000), .invalidHeaderLength(length: 100_000_000, fileSize: 8))
    }

    @Test("a length prefix over 100,000,000 is headerTooLarge (only the 8-byte prefix is needed)")
    func headerTooLarge() throws {
        try expectRejected(SafetensorsBytes.lengthPrefix(100_000_001), .headerTooLarge(length: 100_000_001))
        try expectRejected(SafetensorsBytes.lengthPrefix(1 << 63, then: [1, 2, 3]), .headerTooLarge(length: 1 << 63))
        try expectRejected(SafetensorsBytes.lengthPrefix(UInt64.max), .headerTooLarge(length: UInt64.max))
    }

    // MARK: Header text

    @Test("invalid UTF-8 anywhere in the header is invalidUTF8", arguments: [
        [0xFF],                 // never valid
        [0xC0, 0xAF],           // overlong '/'
        [0xED, 0xA0, 0x80],     // UTF-16 surrogate encoded in UTF-8
        [0xE2, 0x82],           // truncated sequence
        [0xF4, 0x90, 0x80, 0x80], // past U+10FFFF
    ] as [[UInt8]])
    func invalidUTF8(_ bad: [UInt8]) throws {
        let header = Array("{\"__metadata__\":{\"k\":\"".utf8) + bad + Array("\"}}".utf8)
        try expectRejected(SafetensorsBytes.make(headerBytes: header), .invalidUTF8)
        // Also in the padding after the JSON value, where a JSON parser alone might never look.
        try expectRejected(SafetensorsBytes.make(headerBytes: Array("{}".utf8) + bad), .invalidUTF8)
    }

    struct InvalidJSONCase: Sendable, CustomTestStringConvertible {
        let label: String
        let header: String
        let data: Int
        let message: String
        var testDescription: String { label }
    }

    static let invalidJSONCases: [InvalidJSONCase] = [
        .init(label: "truncated", header: #"{"a":{"dtype":"F32""#, data: 0,
              message: "unexpected end of input in an object at byte 19"),
        .init(label: "truncated inside a string", header: #"{"a":{"dty"#, data: 0,
              message: "unterminated string at byte 10"),
        .init(label: "trailing comma in the object", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},}"#, data: 4,
              message: "expected a string key at byte 54"),
        .init(label: "trailing comma in an array", header: #"{"a":{"dtype":"F32","shape":[1,],"data_offsets":[0,4]}}"#, data: 4,
              message: "unexpected character at byte 31"),
        .init(label: "top-level array", header: "[]", data: 0, message: "the header is an array, not an object"),
        .init(label: "top-level string", header: #""{}""#, data: 0, message: "the header is a string, not an object"),
        .init(label: "top-level null", header: "null", data: 0, message: "the header is null, not an object"),
        .init(label: "metadata value is a number", header: #"{"__metadata__":{"k":1}}"#, data: 0,
              message: "__metadata__ value of 'k' is a number, not a string"),
        .init(label: "metadata value is null", header: #"{"__metadata__":{"k":null}}"#, data: 0,
              message: "__metadata__ value of 'k' is null, not a string"),
        .init(label: "metadata is an array", header: #"{"__metadata__":["k","v"]}"#, data: 0,
              message: "__metadata__ is an array, not an object of strings"),
        .init(label: "metadata repeats a key", header: #"{"__metadata__":{"k":"1","k":"2"}}"#, data: 0,
              message: "__metadata__ repeats the key 'k'"),
        .init(label: "shape with a negative", header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: 4,
              message: "tensor 'a': shape entries must be non-negative integers"),
        .init(label: "shape with a float", header: #"{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, data: 4,
              message: "tensor 'a': shape entries must be non-negative integers"),
        .init(label: "shape with an integral float", header: #"{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}"#, data: 4,
              message: "tensor 'a': shape entries must be non-negative integers"),
        .init(label: "shape with an exponent", header: #"{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}"#, data: 4,
              message: "tensor 'a': shape entries must be non-negative integers"),
        .init(label: "shape with a string", header: #"{"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}"#, data: 4,
              message: "tensor 'a': shape entries must be non-negative integers"),
        .init(label: "shape is not an array", header: #"{"a":{"dtype":"F32","shape":1,"data_offsets":[0,4]}}"#, data: 4,
              message: "tensor 'a' has no shape array"),
        .init(label: "data_offsets with 3 entries", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#, data: 4,
              message: "tensor 'a': data_offsets must have 2 entries"),
        .init(label: "data_offsets with 1 entry", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}}"#, data: 4,
              message: "tensor 'a': data_offsets must have 2 entries"),
        .init(label: "data_offsets negative", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#, data: 4,
              message: "tensor 'a': data_offsets must be non-negative integers"),
        .init(label: "data_offsets past Int", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999]}}"#, data: 4,
              message: "tensor 'a': data_offsets must be non-negative integers"),
        .init(label: "missing dtype", header: #"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, data: 4,
              message: "tensor 'a' has no dtype"),
        .init(label: "dtype is not a string", header: #"{"a":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}"#, data: 4,
              message: "tensor 'a': dtype is a number"),
        .init(label: "missing shape", header: #"{"a":{"dtype":"F32","data_offsets":[0,4]}}"#, data: 4,
              message: "tensor 'a' has no shape array"),
        .init(label: "missing data_offsets", header: #"{"a":{"dtype":"F32","shape":[1]}}"#, data: 4,
              message: "tensor 'a' has no data_offsets array"),
        .init(label: "tensor is not an object", header: #"{"a":[1,2]}"#, data: 0,
              message: "tensor 'a' is an array, not an object"),
        .init(label: "tensor repeats a field", header: #"{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}"#, data: 4,
              message: "tensor 'a' repeats the field 'dtype'"),
        .init(label: "comment", header: #"{/* c */}"#, data: 0, message: "expected a string key at byte 1"),
        .init(label: "single quotes", header: "{'a':1}", data: 0, message: "expected a string key at byte 1"),
        .init(label: "two documents", header: "{}{}", data: 0, message: "unexpected text after the JSON value at byte 2"),
        .init(label: "NUL padding", header: "{}\0\0", data: 0, message: "unexpected text after the JSON value at byte 2"),
        .init(label: "byte order mark", header: "\u{FEFF}{}", data: 0, message: "unexpected character at byte 0"),
    ]

    @Test("invalid JSON or JSON of the wrong shape is invalidJSON", arguments: invalidJSONCases)
    func invalidJSON(_ c: InvalidJSONCase) throws {
        try expectRejected(SafetensorsBytes.make(header: c.header, data: SafetensorsBytes.pattern(c.data)), .invalidJSON(c.message))
    }

    @Test("__metadata__ given twice is invalidJSON, not a duplicate tensor")
    func metadataTwice() throws {
        let header = #"{"__metadata__":{"a":"1"},"__metadata__":{"b":"2"}}"#
        try expectRejected(SafetensorsBytes.make(header: header), .invalidJSON("__metadata__ appears more than once"))
    }

    @Test("deeply nested JSON (100k '[') is rejected, not a stack overflow")
    func deepNesting() throws {
        let arrays = String(repeating: "[", count: 100_000)
        try expectRejected(SafetensorsBytes.make(header: arrays), .invalidJSON("nesting deeper than 64 levels at byte 64"))
        let closed = arrays + String(repeating: "]", count: 100_000)
        try expectRejected(SafetensorsBytes.make(header: closed), .invalidJSON("nesting deeper than 64 levels at byte 64"))
        let objects = String(repeating: #"{"a":"#, count: 100_000)
        try expectRejected(SafetensorsBytes.make(header: objects), .invalidJSON("nesting deeper than 64 levels at byte 320"))
        // Deep nesting inside an ignored extra field of a tensor entry.
        let extra = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":"# + arrays
        try expectRejected(SafetensorsBytes.make(header: extra, data: [0, 0, 0, 0]), .invalidJSON("nesting deeper than 64 levels at byte 119"))
    }

    // MARK: Dtypes

    @Test("an unknown dtype is unknownDType, naming tensor and dtype")
    func unknownDType() throws {
        try expectRejected(SafetensorsBytes.make(header: h(e("w", "F128", [1], 0, 16)), data: SafetensorsBytes.pattern(16)),
                           .unknownDType(tensor: "w", dtype: "F128"))
        // Dtype names are case-sensitive, as in the reference.
        try expectRejected(SafetensorsBytes.make(header: h(e("w", "f32", [1], 0, 4)), data: SafetensorsBytes.pattern(4)),
                           .unknownDType(tensor: "w", dtype: "f32"))
        try expectRejected(SafetensorsBytes.make(header: h(e("w", "", [0], 0, 0))), .unknownDType(tensor: "w", dtype: ""))
    }

    @Test("all 22 reference dtypes are accepted")
    func allDTypes() throws {
        var members: [String] = []
        var offset = 0
        for dtype in DType.allCases {
            let n = dtype.byteCount(elementCount: 8)!       // 8 elements fill whole bytes for every dtype
            members.append(e("t_\(dtype.rawValue)", dtype.rawValue, [2, 4], offset, offset + n))
            offset += n
        }
        let checkpoint = try accepted(SafetensorsBytes.make(header: "{" + members.joined(separator: ",") + "}", data: SafetensorsBytes.pattern(offset)))
        #expect(checkpoint.entries.map(\.encodingName) == DType.allCases.map(\.rawValue))
    }

    // MARK: Offsets and coverage

    @Test("overlapping offsets are invalidOffset for the later tensor")
    func overlap() throws {
        try expectRejected(SafetensorsBytes.make(header: h(e("a", "F32", [2], 0, 8), e("b", "F32", [2], 4, 12)), data: SafetensorsBytes.pattern(12)),
                           .invalidOffset(tensor: "b"))
        // Same range twice.
        try expectRejected(SafetensorsBytes.make(header: h(e("a", "F32", [1], 0, 4), e("b", "F32", [1], 0, 4)), data: SafetensorsBytes.pattern(4)),
                           .invalidOffset(tensor: "b"))
    }

    @Test("a hole (a tensor starting past the previous end) is invalidOffset")
    func hole() throws {
        try expectRejected(SafetensorsBytes.make(header: h(e("a", "F32", [1], 0, 4), e("b", "F32", [1], 8, 12)), data: SafetensorsBytes.pattern(12)),
                           .invalidOffset(tensor: "b"))
        // Listed out of order: the check runs in offset order, so the later tensor is named.
        try expectRejected(SafetensorsBytes.make(header: h(e("b", "F32", [1], 8, 12), e("a", "F32", [1], 0, 4)), data: SafetensorsBytes.pattern(12)),
                           .invalidOffset(tensor: "b"))
    }

    @Test("a first tensor not starting at 0 is invalidOffset")
    func firstNotAtZero() throws {
        try expectRejected(SafetensorsBytes.make(header: h(e("a", "F32", [1], 4, 8)), data: SafetensorsBytes.pattern(8)),
                           .invalidOffset(tensor: "a"))
    }

    @Test("end < begin is invalidOffset")
    func endBeforeBegin() throws {
        try expectRejected(SafetensorsBytes.make(header: h(e("a", "F32", [1], 8, 4)), data: SafetensorsBytes.pattern(8)),
                           .invalidOffset(tensor: "a"))
        try expectRejected(SafetensorsBytes.make(header: h(e("a", "F32", [1], 0, 4), e("b", "F32", [1], 8, 4)), data: SafetensorsBytes.pattern(8)),
                           .invalidOffset(tensor: "b"))
    }

    @Test("trailing bytes after the data are incompleteBuffer")
    func trailingBytes() throws {
        let header = h(e("a", "F32", [1], 0, 4))
        let off = SafetensorsBytes.dataOffset(header: header)
        try expectRejected(SafetensorsBytes.make(header: header, data: SafetensorsBytes.pattern(5)), .incompleteBuffer(dataEnd: off + 4, fileSize: off + 5))
        // No tensors at all, but data.
        try expectRejected(SafetensorsBytes.make(header: "{}", data: [1, 2, 3]), .incompleteBuffer(dataEnd: 10, fileSize: 13))
        // A polyglot: a valid file followed by another file's bytes.
        let valid = SafetensorsBytes.validPair()
        try expectRejected(valid + valid, .incompleteBuffer(dataEnd: valid.count, fileSize: 2 * valid.count))
    }

    @Test("data shorter than the offsets say is incompleteBuffer")
    func missingBytes() throws {
        let header = h(e("a", "F32", [2], 0, 8))
        let off = SafetensorsBytes.dataOffset(header: header)
        try expectRejected(SafetensorsBytes.make(header: header, data: SafetensorsBytes.pattern(4)), .incompleteBuffer(dataEnd: off + 8, fileSize: off + 4))
        try expectRejected(SafetensorsBytes.make(header: header), .incompleteBuffer(dataEnd: off + 8, fileSize: off))
        // Offsets far past the file must not be trusted for any read.
        let huge = h(e("a", "U8", [1 << 40], 0, 1 << 40))
        let hugeOff = SafetensorsBytes.dataOffset(header: huge)
        try expectRejected(SafetensorsBytes.make(header: huge), .incompleteBuffer(dataEnd: hugeOff + (1 << 40), fileSize: hugeOff))
    }

    @Test("offsets whose end + header length overflows are incompleteBuffer, not a crash")
    func offsetSumOverflow() throws {
        // Eight contiguous U8 tensors of 2^60 - 1 bytes (the most whose bit count fits in Int) end at
        // Int.max - 7; adding the header length overflows.
        let size = (1 << 60) - 1
        let members = (0..<8).map { e("t\($0)", "U8", [size], $0 * size, ($0 + 1) * size) }
        let header = "{" + members.joined(separator: ",") + "}"
        try expectRejected(SafetensorsBytes.make(header: header), .incompleteBuffer(dataEnd: Int.max, fileSize: SafetensorsBytes.dataOffset(header: header)))
    }

    // MARK: Sizes

    @Test("a byte count that does not match dtype and shape is byteCountMismatch (TensorInvalidInfo)")
    func byteCountMismatch() throws {
        try expectRejected(SafetensorsBytes.make(header: h(e("a", "F32", [2], 0, 4)), data: SafetensorsBytes.pattern(4)),
                           .byteCountMismatch(tensor: "a", expected: 8, actual: 4))
        try expectRejected(SafetensorsBytes.make(header: h(e("a", "BF16", [2, 3], 0, 24)), data: SafetensorsBytes.pattern(24)),
                           .byteCountMismatch(tensor: "a", expected: 12, actual: 24))
        // A zero-element tensor that claims bytes.
        try expectRejected(SafetensorsBytes.make(header: h(e("z", "F32", [4, 0], 0, 4)), data: SafetensorsBytes.pattern(4)),
                           .byteCountMismatch(tensor: "z", expected: 0, actual: 4))
    }

    @Test("an element count that overflows is overflow")
    func elementCountOverflow() throws {
        // 2^62 * 4 = 2^64 elements.
        try expectRejected(SafetensorsBytes.make(header: h(e("a", "F32", [1 << 62, 4], 0, 0))), .overflow(tensor: "a"))
        // The product overflows before a zero dimension is reached (the reference's checked_mul fold fails too).
        try expectRejected(SafetensorsBytes.make(header: h(e("a", "U8", [1 << 62, 4, 0], 0, 0))), .overflow(tensor: "a"))
        // 2^63 elements: past Int.max (the reference fails on the bit count instead: same error).
        try expectRejected(SafetensorsBytes.make(header: h(e("a", "U8", [1 << 62, 2], 0, 0))), .overflow(tensor: "a"))
        // A single dimension that does not fit in Int.
        try expectRejected(SafetensorsBytes.make(header: h(#""a":{"dtype":"U8","shape":[99999999999999999999],"data_offsets":[0,0]}"#)),
                           .overflow(tensor: "a"))
    }

    @Test("an element count whose bit count overflows is overflow")
    func bitCountOverflow() throws {
        // 2^62 elements fit in Int; 2^62 * 32 bits do not.
        try expectRejected(SafetensorsBytes.make(header: h(e("a", "F32", [1 << 60, 4], 0, 0))), .overflow(tensor: "a"))
        try expectRejected(SafetensorsBytes.make(header: h(e("a", "F4", [Int.max], 0, 0))), .overflow(tensor: "a"))
    }

    @Test("a sub-byte dtype whose bits do not fill whole bytes is misalignedSubByte")
    func misalignedSubByte() throws {
        try expectRejected(SafetensorsBytes.make(header: h(e("q", "F4", [3], 0, 2)), data: SafetensorsBytes.pattern(2)), .misalignedSubByte(tensor: "q"))
        try expectRejected(SafetensorsBytes.make(header: h(e("q", "F6_E2M3", [2], 0, 2)), data: SafetensorsBytes.pattern(2)), .misalignedSubByte(tensor: "q"))
        try expectRejected(SafetensorsBytes.make(header: h(e("q", "F6_E3M2", [1, 5], 0, 4)), data: SafetensorsBytes.pattern(4)), .misalignedSubByte(tensor: "q"))
    }

    @Test("sub-byte dtypes that fill whole bytes are accepted")
    func subByteAligned() throws {
        let checkpoint = try accepted(SafetensorsBytes.make(
            header: h(e("f4", "F4", [2, 3], 0, 3), e("f6", "F6_E2M3", [4], 3, 6)), data: SafetensorsBytes.pattern(6)))
        #expect(try dense(checkpoint, "f4").byteCount == 3)
        #expect(try dense(checkpoint, "f6").byteCount == 3)
    }

    // MARK: Names

    @Test("a repeated tensor name is duplicateTensor")
    func duplicateTensor() throws {
        try expectRejected(SafetensorsBytes.make(header: h(e("a", "F32", [1], 0, 4), e("a", "F32", [1], 4, 8)), data: SafetensorsBytes.pattern(8)),
                           .duplicateTensor("a"))
        // Identical entries, so that a "last one wins" reader would see a consistent file.
        try expectRejected(SafetensorsBytes.make(header: h(e("a", "F32", [1], 0, 4), e("a", "F32", [1], 0, 4)), data: SafetensorsBytes.pattern(4)),
                           .duplicateTensor("a"))
        // The same name spelled with an escape.
        try expectRejected(SafetensorsBytes.make(header: h(e("a", "F32", [1], 0, 4), #""\u0061":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}"#),
                                                 data: SafetensorsBytes.pattern(8)),
                           .duplicateTensor("a"))
    }

    @Test("names that are Unicode-equivalent but differ in bytes are distinct tensors and keys, as in the reference")
    func canonicallyEquivalentNames() throws {
        let composed = "\u{E9}", decomposed = "e\u{301}"      // "é" as one scalar and as e + combining acute
        let metadata = "\"__metadata__\":{" + JSONWriter.quoted(composed) + ":\"1\"," + JSONWriter.quoted(decomposed) + ":\"2\"}"
        let checkpoint = try accepted(SafetensorsBytes.make(header: h(metadata, e(composed, "U8", [1], 0, 1), e(decomposed, "U8", [1], 1, 2)),
                                                            data: [10, 20]))
        #expect(checkpoint.entries.map { Array($0.name.utf8) } == [Array(composed.utf8), Array(decomposed.utf8)])
        #expect(try dense(checkpoint, composed).storage.array == [10])
        #expect(try dense(checkpoint, decomposed).storage.array == [20])
        #expect(checkpoint.metadata.map { Array($0.key.utf8) } == [Array(composed.utf8), Array(decomposed.utf8)])
    }

    // MARK: Tolerated by the reference, accepted here

    @Test("whitespace before '{' and after '}' is accepted")
    func surroundingWhitespace() throws {
        let checkpoint = try accepted(SafetensorsBytes.make(header: " \n\t\r" + h(e("a", "F32", [1], 0, 4)) + "   \n", data: SafetensorsBytes.pattern(4)))
        #expect(checkpoint.entries.map(\.name) == ["a"])
    }

    @Test("unknown extra fields in a tensor entry are ignored")
    func extraFields() throws {
        let header = #"{"a":{"quant":{"bits":[4,{"x":null}]},"dtype":"F32","note":"hi","shape":[1],"data_offsets":[0,4],"z":true}}"#
        let checkpoint = try accepted(SafetensorsBytes.make(header: header, data: SafetensorsBytes.pattern(4)))
        #expect(try dense(checkpoint, "a").shape == Shape([1]))
    }

    @Test("tensors listed in non-offset order are accepted and ordered by offset")
    func nonOffsetOrder() throws {
        let data = SafetensorsBytes.pattern(20)
        let checkpoint = try accepted(SafetensorsBytes.make(
            header: h(e("c", "I16", [2], 16, 20), e("a", "F32", [2], 0, 8), e("b", "U8", [8], 8, 16)), data: data))
        #expect(checkpoint.entries.map(\.name) == ["a", "b", "c"])
        #expect(try dense(checkpoint, "a").storage.array == Array(data[0..<8]))
        #expect(try dense(checkpoint, "b").storage.array == Array(data[8..<16]))
        #expect(try dense(checkpoint, "c").storage.array == Array(data[16..<20]))
    }

    @Test("zero-element tensors are accepted at the start, middle and end")
    func zeroElements() throws {
        let checkpoint = try accepted(SafetensorsBytes.make(
            header: h(e("end", "F32", [0], 8, 8), e("b", "F32", [1], 4, 8), e("mid", "BF16", [2, 0], 4, 4), e("a", "F32", [1], 0, 4),
                      e("start", "I64", [0, 7], 0, 0)),
            data: SafetensorsBytes.pattern(8)))
        #expect(checkpoint.entries.map(\.name) == ["start", "a", "mid", "b", "end"])
        #expect(try dense(checkpoint, "mid").byteCount == 0)
        #expect(try dense(checkpoint, "mid").shape == Shape([2, 0]))
        // Only zero-element tensors, and no data at all.
        let empty = try accepted(SafetensorsBytes.make(header: h(e("z", "F32", [0], 0, 0))))
        #expect(empty.entries.map(\.elementCount) == [0])
    }

    @Test("a scalar (shape []) is one element")
    func scalar() throws {
        let checkpoint = try accepted(SafetensorsBytes.make(header: h(e("s", "F64", [], 0, 8)), data: SafetensorsBytes.pattern(8)))
        let s = try dense(checkpoint, "s")
        #expect(s.shape == Shape([]))
        #expect(s.elementCount == 1)
        #expect(s.byteCount == 8)
    }

    @Test("__metadata__ null is no metadata; metadata keeps file order")
    func metadata() throws {
        let none = try accepted(SafetensorsBytes.make(header: h(#""__metadata__":null"#, e("a", "F32", [1], 0, 4)), data: SafetensorsBytes.pattern(4)))
        #expect(none.metadata.isEmpty)
        let empty = try accepted(SafetensorsBytes.make(header: h(#""__metadata__":{}"#)))
        #expect(empty.metadata.isEmpty && empty.entries.isEmpty)
        let some = try accepted(SafetensorsBytes.make(header: h(e("a", "F32", [1], 0, 4), #""__metadata__":{"z":"1","a":"é\n\"x\"","m":""}"#),
                                                      data: SafetensorsBytes.pattern(4)))
        #expect(some.metadata == [MetadataEntry(key: "z", value: .string("1")), MetadataEntry(key: "a", value: .string("é\n\"x\"")),
                                  MetadataEntry(key: "m", value: .string(""))])
    }

    @Test("the reference writer's padded empty file (\"{}\" + 6 spaces) is accepted")
    func paddedEmpty() throws {
        let checkpoint = try accepted(SafetensorsBytes.make(header: "{}      "))
        #expect(checkpoint.entries.isEmpty)
    }

    @Test("names with escapes and non-ASCII are decoded")
    func unusualNames() throws {
        let checkpoint = try accepted(SafetensorsBytes.make(
            header: h(#""la\u0079er.\"0\"\\w\n":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}"#, e("模型.😀", "U8", [1], 1, 2), e("", "U8", [1], 2, 3)),
            data: [1, 2, 3]))
        #expect(checkpoint.entries.map(\.name) == ["layer.\"0\"\\w\n", "模型.😀", ""])
    }

    @Test("a valid file whose header length has the low byte '{' (0x7B) opens through CheckpointReader")
    func headerLengthLooksLikeJSON() throws {
        // Unpadded writers can produce any header length; 123 = 0x7B = '{'.
        var header = h(e("a", "U8", [1], 0, 1))
        header += String(repeating: " ", count: 123 - header.utf8.count)
        let bytes = SafetensorsBytes.make(header: header, data: [42])
        #expect(bytes.first == UInt8(ascii: "{"))
        _ = try accepted(bytes)
        let dir = try TemporaryDirectory(prefix: "st-brace")
        let path = try dir.write(bytes, to: "model.safetensors")
        #expect(try CheckpointFormat.detect(path: path).format == .safetensors)
        #expect(try CheckpointReader.open(path: path).entries.map(\.name) == ["a"])
    }

    // MARK: Truncation and mutation

    @Test("every truncation of a valid file is rejected with the error its length implies")
    func truncations() throws {
        let valid = SafetensorsBytes.validPair()
        let headerEnd = 8 + Int(valid[0])     // the header is shorter than 256 bytes
        for length in 0..<valid.count {
            let kind: SafetensorsError.Kind =
                length < 8 ? .headerTooSmall(fileSize: length)
                : length < headerEnd ? .invalidHeaderLength(length: UInt64(headerEnd - 8), fileSize: length)
                : .incompleteBuffer(dataEnd: valid.count, fileSize: length)
            #expect(throws: SafetensorsError(file: "memory.safetensors", kind: kind)) { try SafetensorsBytes.parse(Array(valid.prefix(length))) }
        }
        #expect(throws: Never.self) { try SafetensorsBytes.parse(valid) }
    }

    @Test("seeded random mutations of a valid file never crash; accepted ones stay within the file", arguments: 0..<4)
    func mutations(seed: Int) throws {
        let valid = SafetensorsBytes.make(header: h(#""__metadata__":{"k":"v"}"#, e("a", "F32", [2], 0, 8), e("b", "I8", [3], 8, 11),
                                                   e("c", "F4", [2, 2], 11, 13), e("z", "BF16", [0], 13, 13)),
                                          data: SafetensorsBytes.pattern(13))
        let interesting: [UInt8] = Array(#"{}[]",:0123456789-.e \u"#.utf8) + [0x00, 0x7F, 0x80, 0xFF]
        var rng = SeededGenerator(seed: UInt64(seed) + 1000)
        var acceptedCount = 0
        for _ in 0..<500 {
            var bytes = valid
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let i = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 4 {
                case 0: bytes[i] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes[i] = interesting[Int(rng.next() % UInt64(interesting.count))]
                case 2: bytes.remove(at: i)
                default: bytes.insert(interesting[Int(rng.next() % UInt64(interesting.count))], at: i)
                }
                if bytes.isEmpty { bytes = [0] }
            }
            do {
                let header = try SafetensorsBytes.parse(bytes)
                acceptedCount += 1
                for t in header.tensors {
                    #expect(t.dataRange.lowerBound >= 0 && header.dataOffset + t.dataRange.upperBound <= bytes.count)
                }
            } catch {
                // Typed throws: every rejection is a SafetensorsError naming the file.
                #expect(error.file == "memory.safetensors")
            }
        }
        #expect(acceptedCount < 500)
    }

    // MARK: Round trip

    @Test("SafetensorsWriter -> SafetensorsReader keeps names, dtypes, shapes, bytes and metadata", arguments: 0..<24)
    func roundTrip(seed: Int) throws {
        var rng = SeededGenerator(seed: UInt64(seed) &* 0x9E37_79B9 &+ 17)
        func pick(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        let alphabet: [String] = ["a", "b", "Z", "0", ".", "_", "-", " ", "\"", "\\", "\n", "\t", "\u{01}", "é", "模", "😀", "/"]
        func randomText(_ maxLength: Int) -> String { (0..<pick(maxLength + 1)).map { _ in alphabet[pick(alphabet.count)] }.joined() }

        var names = Set<String>()
        var planned: [SafetensorsWriter.PlannedTensor] = []
        var bytes: [String: [UInt8]] = [:]
        for i in 0..<pick(8) {
            let name = "t\(i)" + randomText(6)
            guard names.insert(name).inserted else { continue }
            var dtype: DType
            var dims: [Int]
            repeat {
                dtype = DType.allCases[pick(DType.allCases.count)]
                dims = (0..<pick(4)).map { _ in pick(10) == 0 ? 0 : 1 + pick(6) }
            } while dtype.byteCount(elementCount: Shape(dims).elementCount) == nil
            let shape = Shape(dims)
            let count = dtype.byteCount(elementCount: shape.elementCount)!
            planned.append(.init(name: name, dtype: dtype, shape: shape))
            bytes[name] = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        }
        var keys = Set<String>()
        var metadata: [(key: String, value: String)] = []
        for _ in 0..<pick(4) {
            let key = randomText(5)
            guard keys.insert(key).inserted else { continue }
            metadata.append((key, randomText(12)))
        }
        let ordering: SafetensorsWriter.Ordering = seed % 2 == 0 ? .preserve : .reference

        let dir = try TemporaryDirectory(prefix: "st-roundtrip")
        let path = dir.url("rt.safetensors")
        try SafetensorsWriter.write(to: path, metadata: metadata, tensors: planned, ordering: ordering) { i in
            try DenseTensor(dtype: planned[i].dtype, shape: planned[i].shape, storage: ByteStorage(bytes[planned[i].name]!))
        }
        let file = try TemporaryDirectory.read(path)
        let headerLength = file.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect((8 + headerLength) % 8 == 0, "the data section starts 8-aligned")
        #expect(try dir.entries() == ["rt.safetensors"], "no temporary file is left")

        let checkpoint = try SafetensorsReader.open(path: path)
        let expected = SafetensorsWriter.arrange(planned, ordering).map { planned[$0] }
        #expect(checkpoint.entries.map(\.name) == expected.map(\.name))
        for (entry, plan) in zip(checkpoint.entries, expected) {
            let t = try dense(checkpoint, entry.name)
            #expect(t.dtype == plan.dtype)
            #expect(t.shape == plan.shape)
            #expect(t.storage.array == bytes[plan.name]!)
        }
        #expect(checkpoint.metadata == metadata.map { MetadataEntry(key: $0.key, value: .string($0.value)) })
    }
}
