import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// Hostile GGUF inputs: every check of llama.cpp's C reader (`gguf_init_from_reader`, formats.md §1),
/// one test per `GGUFError.Kind`, each with the exact error it must produce, plus the files the C
/// reader (or gguf-py) accepts and we must accept too, and a seeded mutation run.
///
/// Every rejected input is checked twice: parsed from memory (`GGUFHeader`) and opened from a file
/// (`GGUFReader.open`, which memory-maps it), where the error must name that file.
@Suite("GGUF hostile input")
struct GGUFHostileTests {
    typealias B = GGUFBytes

    // MARK: Helpers

    /// Asserts that `bytes` are rejected with exactly `kind`, both in memory and from a file.
    private func expectRejected(_ bytes: [UInt8], _ kind: GGUFError.Kind,
                                sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(throws: GGUFError(file: "memory.gguf", kind: kind), sourceLocation: sourceLocation) {
            try B.parse(bytes)
        }
        let dir = try TemporaryDirectory(prefix: "gguf-hostile")
        let path = try dir.write(bytes, to: "hostile.gguf")
        #expect(throws: GGUFError(file: path, kind: kind), sourceLocation: sourceLocation) {
            try GGUFReader.open(path: path)
        }
    }

    /// Asserts that `bytes` are accepted in memory and from a file; returns the header.
    @discardableResult
    private func accepted(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws -> GGUFHeader {
        let header = try B.parse(bytes)
        let dir = try TemporaryDirectory(prefix: "gguf-ok")
        let path = try dir.write(bytes, to: "ok.gguf")
        let checkpoint = try GGUFReader.open(path: path)
        #expect(checkpoint.entries.map(\.name) == header.tensors.map(\.name), sourceLocation: sourceLocation)
        #expect(checkpoint.metadata.map(\.key) == header.metadata.map(\.key), sourceLocation: sourceLocation)
        return header
    }

    /// A file with the given KV records and no tensors.
    private func metadataOnly(_ records: [UInt8]...) -> [UInt8] { B.file(metadata: records) }

    /// A file with one F32 tensor info (`ne`, `type` overridable) and `dataBytes` of data.
    private func oneTensor(_ name: String = "w", ne: [Int64] = [4], type: UInt32 = 0, dataBytes: Int = 16) -> [UInt8] {
        B.file(tensors: [B.Tensor(name, ne: ne, type: type, data: SafetensorsBytes.pattern(dataBytes))])
    }

    // MARK: The reference file and where its parts start

    /// The parts of `GGUFBytes.valid()`, so that cuts can be placed inside each one.
    enum Valid {
        static let bytes = B.valid()
        static let kv0 = B.kv("general.architecture", .string("llama"))                   // 45 bytes
        static let kv1 = B.kv("tokenizer.tokens", .array(elementType: .string, values: [.string("hello"), .string("world")]))
        static let kv2 = B.kv("llama.block_count", .uint32(2))
        static let kv0Start = 24
        static let kv1Start = kv0Start + kv0.count
        static let kv2Start = kv1Start + kv1.count
        static let infosStart = kv2Start + kv2.count
        static let infoA = B.tensorInfo("a", ne: [3, 2], type: 0, offset: 0)
        static let infoBStart = infosStart + infoA.count
        static let infoB = B.tensorInfo("b", ne: [5], type: 0, offset: 32)
        static let dataOffset = B.alignUp(infoBStart + infoB.count, 32)
    }

    @Test("the reference file is valid and laid out as the cuts assume")
    func referenceFile() throws {
        let header = try accepted(Valid.bytes)
        #expect(header.dataOffset == Valid.dataOffset)
        #expect(Valid.bytes.count == Valid.dataOffset + 64)
        #expect(Array(Valid.bytes[Valid.kv1Start..<Valid.kv2Start]) == Valid.kv1)
        #expect(Array(Valid.bytes[Valid.infoBStart..<(Valid.infoBStart + Valid.infoB.count)]) == Valid.infoB)
        #expect(header.tensors.map(\.offset) == [0, 32] && header.tensors.map(\.byteCount) == [24, 20])
        #expect(header.metadata.map(\.key) == ["general.architecture", "tokenizer.tokens", "llama.block_count"])
    }

    // MARK: One test per GGUFError.Kind

    /// A cut of the reference file, where it falls and the error it must give.
    struct Cut: Sendable, CustomTestStringConvertible {
        let stage: String
        let length: Int
        let kind: GGUFError.Kind
        var testDescription: String { "\(stage) (\(length) bytes)" }
    }

    static let cuts: [Cut] = {
        let v = Valid.self
        let tokens = "metadata 'tokenizer.tokens'"
        return [
            Cut(stage: "empty file", length: 0, kind: .truncated("the magic")),
            Cut(stage: "magic", length: 3, kind: .truncated("the magic")),
            Cut(stage: "version", length: 6, kind: .truncated("the version")),
            Cut(stage: "tensor count", length: 12, kind: .truncated("the tensor count")),
            Cut(stage: "metadata count", length: 20, kind: .truncated("the metadata count")),
            // Three KVs need at least 3 × 13 bytes: a cut before that is caught by the count check.
            Cut(stage: "first key, before 3 KVs fit", length: 40, kind: .countTooLarge(what: "metadata", count: 3)),
            Cut(stage: "value string bytes", length: v.kv1Start - 2,
                kind: .stringTooLong(context: "metadata 'general.architecture'", length: 5)),
            Cut(stage: "value type", length: v.kv1Start + 26, kind: .truncated(tokens)),
            Cut(stage: "array element type", length: v.kv1Start + 30, kind: .truncated(tokens)),
            Cut(stage: "array count", length: v.kv1Start + 35, kind: .truncated(tokens)),
            Cut(stage: "array elements, before they can fit", length: v.kv1Start + 45,
                kind: .countTooLarge(what: "array 'tokenizer.tokens' element", count: 2)),
            Cut(stage: "second array string length", length: v.kv1Start + 56, kind: .truncated(tokens)),
            Cut(stage: "second array string bytes", length: v.kv2Start - 2, kind: .stringTooLong(context: tokens, length: 5)),
            Cut(stage: "key length", length: v.kv2Start + 4, kind: .truncated("metadata key #2")),
            Cut(stage: "key bytes", length: v.kv2Start + 12, kind: .stringTooLong(context: "metadata key #2", length: 17)),
            Cut(stage: "second value type", length: v.kv2Start + 27, kind: .truncated("metadata 'llama.block_count'")),
            Cut(stage: "u32 value", length: v.kv2Start + 31, kind: .truncated("metadata 'llama.block_count'")),
            Cut(stage: "tensor infos, before 2 fit", length: v.infosStart + 40, kind: .countTooLarge(what: "tensor", count: 2)),
            Cut(stage: "second tensor name length", length: v.infoBStart + 7, kind: .truncated("tensor info #1")),
            Cut(stage: "second tensor name bytes", length: v.infoBStart + 8, kind: .stringTooLong(context: "tensor info #1", length: 1)),
            Cut(stage: "second tensor n_dims", length: v.infoBStart + 11, kind: .truncated("tensor 'b'")),
            Cut(stage: "second tensor dimension", length: v.infoBStart + 17, kind: .truncated("tensor 'b'")),
            Cut(stage: "second tensor type", length: v.infoBStart + 23, kind: .truncated("tensor 'b'")),
            Cut(stage: "second tensor offset", length: v.infoBStart + 30, kind: .truncated("tensor 'b'")),
            Cut(stage: "padding before the data", length: v.dataOffset - 5, kind: .dataOutOfBounds(tensor: "a")),
            Cut(stage: "first tensor's data", length: v.dataOffset + 10, kind: .dataOutOfBounds(tensor: "a")),
            Cut(stage: "padding after the first tensor", length: v.dataOffset + 30, kind: .dataOutOfBounds(tensor: "b")),
            Cut(stage: "last tensor's data", length: v.dataOffset + 32 + 19, kind: .dataOutOfBounds(tensor: "b")),
        ]
    }()

    @Test("truncated: a cut at every stage gives the error of that stage", arguments: cuts)
    func truncated(_ cut: Cut) throws {
        try expectRejected(Array(Valid.bytes.prefix(cut.length)), cut.kind)
    }

    @Test("badMagic: anything but GGUF in the first 4 bytes")
    func badMagic() throws {
        try expectRejected(B.header(tensorCount: 0, kvCount: 0, magic: Array("GGUG".utf8)), .badMagic)
        try expectRejected(Array("FUGG".utf8) + Array(Valid.bytes.dropFirst(4)), .badMagic)
        // A safetensors file is not GGUF either.
        try expectRejected(SafetensorsBytes.validPair(), .badMagic)
    }

    @Test("unsupportedVersion: v1 (removed), v0 and anything after v3", arguments: [UInt32(1), 0, 4, 5, 0xFFFF_FFFF])
    func unsupportedVersion(_ version: UInt32) throws {
        try expectRejected(B.file(version: version), .unsupportedVersion(version))
    }

    @Test("bigEndian: a version whose low 16 bits are zero means the other byte order")
    func bigEndian() throws {
        // The whole header big-endian: version 3, 0 tensors, 0 KVs.
        let be: [UInt8] = GGUFHeader.magic + [0, 0, 0, 3] + [UInt8](repeating: 0, count: 16)
        try expectRejected(be, .bigEndian)
        // The reference file with only its version byte-swapped.
        var swapped = Valid.bytes
        swapped.replaceSubrange(4..<8, with: [0, 0, 0, 3])
        try expectRejected(swapped, .bigEndian)
        try expectRejected(B.header(version: 0x0002_0000, tensorCount: 0, kvCount: 0), .bigEndian)
    }

    @Test("countTooLarge: KV and tensor counts larger than the file can hold are refused before any allocation",
          arguments: [UInt64(4), 1 << 40, UInt64(Int64.max), UInt64.max])
    func countTooLarge(_ count: UInt64) throws {
        // One real KV (general.architecture, 45 bytes) holds 3 × 13 bytes: a count of 4 cannot fit.
        try expectRejected(B.file(metadata: [Valid.kv0], kvCount: count), .countTooLarge(what: "metadata", count: count))
        // One 33-byte tensor info, 26 bytes of padding and 32 of data (91 bytes) hold at most 3 × 24-byte
        // infos; the tensor count is checked after the KVs.
        let tensor = B.file(metadata: [Valid.kv0], tensors: [.f32("b", [1, 2, 3, 4, 5])], tensorCount: count)
        try expectRejected(tensor, .countTooLarge(what: "tensor", count: count))
    }

    @Test("countTooLarge: an array count beyond the bytes left (per element type's minimum size)")
    func arrayCountTooLarge() throws {
        // 2 u32 elements present, count claims 3.
        try expectRejected(metadataOnly(B.kv("k", type: 9, value: B.u32(4) + B.u64(3) + B.u32(1) + B.u32(2))),
                           .countTooLarge(what: "array 'k' element", count: 3))
        // Strings take at least 8 bytes each: 16 bytes left cannot hold 3 strings.
        try expectRejected(metadataOnly(B.kv("k", type: 9, value: B.u32(8) + B.u64(3) + B.string("") + B.string(""))),
                           .countTooLarge(what: "array 'k' element", count: 3))
        try expectRejected(metadataOnly(B.kv("k", type: 9, value: B.u32(0) + B.u64(.max))),
                           .countTooLarge(what: "array 'k' element", count: .max))
        // Over 2^30 elements is refused even if the bytes were there (the C reader's limit).
        try expectRejected(metadataOnly(B.kv("k", type: 9, value: B.u32(0) + B.u64(1 << 30 + 1))),
                           .countTooLarge(what: "array 'k' element", count: 1 << 30 + 1))
        // The exact count is fine, and an empty array too.
        let ok = try accepted(metadataOnly(B.kv("k", type: 9, value: B.u32(4) + B.u64(2) + B.u32(1) + B.u32(2)),
                                           B.kv("e", type: 9, value: B.u32(8) + B.u64(0))))
        #expect(ok.metadata[0].value == .array(elementType: .uint32, values: [.uint32(1), .uint32(2)]))
        #expect(ok.metadata[1].value == .array(elementType: .string, values: []))
    }

    @Test("stringTooLong: key, value and tensor-name lengths beyond the file")
    func stringTooLong() throws {
        try expectRejected(metadataOnly(B.u64(100) + Array("abc".utf8) + B.u32(4) + B.u32(1)),
                           .stringTooLong(context: "metadata key #0", length: 100))
        try expectRejected(metadataOnly(B.kv("k", type: 8, value: B.u64(6) + Array("abcde".utf8))),
                           .stringTooLong(context: "metadata 'k'", length: 6))
        try expectRejected(metadataOnly(B.kv("k", type: 8, value: B.u64(.max) + Array("abcde".utf8))),
                           .stringTooLong(context: "metadata 'k'", length: .max))
        try expectRejected(metadataOnly(B.kv("k", type: 8, value: B.u64(1 << 30 + 1) + Array("abcde".utf8))),
                           .stringTooLong(context: "metadata 'k'", length: 1 << 30 + 1))
        var name = B.tensorInfo("w", ne: [4], type: 0, offset: 0)
        name.replaceSubrange(0..<8, with: B.u64(1 << 40))
        try expectRejected(B.header(tensorCount: 1, kvCount: 0) + name + B.zeros(32), .stringTooLong(context: "tensor info #0", length: 1 << 40))
    }

    @Test("stringTooLong: a key over 1 GiB is refused even when the file holds it (sparse mapped file)")
    func stringOverOneGiB() throws {
        let dir = try TemporaryDirectory(prefix: "gguf-huge")
        let length = UInt64(1 << 30) + 1
        let path = try dir.write(B.header(tensorCount: 0, kvCount: 1) + B.u64(length), to: "huge.gguf")
        // Extend with a hole: the key bytes, a type id and a u8 value all fit.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: 32 + length + 5)
        try handle.close()
        let file = try MappedFile(path: path)
        #expect(file.byteCount == 32 + Int(length) + 5)
        #expect(throws: GGUFError(file: path, kind: .stringTooLong(context: "metadata key #0", length: length))) {
            try GGUFReader.header(of: file)
        }
    }

    @Test("invalidUTF8: keys, string values and tensor names must be UTF-8")
    func invalidUTF8() throws {
        try expectRejected(metadataOnly(B.kv(keyBytes: [0x61, 0xFF], type: 4, value: B.u32(1))), .invalidUTF8(context: "metadata key #0"))
        try expectRejected(metadataOnly(B.kv(keyBytes: [0xC3], type: 4, value: B.u32(1))), .invalidUTF8(context: "metadata key #0"))
        try expectRejected(metadataOnly(B.kv("k", type: 8, value: B.string(bytes: [0xED, 0xA0, 0x80]))), .invalidUTF8(context: "metadata 'k'"))
        try expectRejected(metadataOnly(B.kv("k", type: 9, value: B.u32(8) + B.u64(2) + B.string("ok") + B.string(bytes: [0x80]))),
                           .invalidUTF8(context: "metadata 'k'"))
        let info = B.tensorInfo(nameBytes: [0x77, 0xFE], ne: [4], type: 0, offset: 0)
        try expectRejected(B.header(tensorCount: 1, kvCount: 0) + info + B.zeros(48),
                           .invalidUTF8(context: "tensor info #0"))
    }

    @Test("emptyKey: a zero-length key")
    func emptyKey() throws {
        try expectRejected(metadataOnly(B.kv("", .uint32(1))), .emptyKey)
        try expectRejected(metadataOnly(Valid.kv0, B.kv("", .string("x"))), .emptyKey)
    }

    @Test("duplicateKey: the same key twice, whatever the types")
    func duplicateKey() throws {
        try expectRejected(metadataOnly(B.kv("a", .uint32(1)), B.kv("a", .uint32(1))), .duplicateKey("a"))
        try expectRejected(metadataOnly(Valid.kv0, B.kv("b", .int8(1)), B.kv("general.architecture", .bool(true))),
                           .duplicateKey("general.architecture"))
        // Different bytes are different keys, even if Unicode-equivalent (é precomposed vs e + U+0301).
        try accepted(metadataOnly(B.kv("caf\u{E9}", .uint8(1)), B.kv("cafe\u{301}", .uint8(2))))
    }

    @Test("unknownValueType: value types outside 0...12, for values and array elements",
          arguments: [UInt32(13), 14, 0x8000_0000, 0xFFFF_FFFF])
    func unknownValueType(_ type: UInt32) throws {
        try expectRejected(metadataOnly(B.kv("k", type: type, value: B.u64(0))), .unknownValueType(key: "k", type: type))
        try expectRejected(metadataOnly(B.kv("arr", type: 9, value: B.u32(type) + B.u64(0))), .unknownValueType(key: "arr", type: type))
    }

    @Test("nestedArray: an array of arrays is refused, even an empty one")
    func nestedArray() throws {
        let inner = B.u32(4) + B.u64(1) + B.u32(7)
        try expectRejected(metadataOnly(B.kv("n", type: 9, value: B.u32(9) + B.u64(1) + inner)), .nestedArray(key: "n"))
        try expectRejected(metadataOnly(B.kv("n", type: 9, value: B.u32(9) + B.u64(0))), .nestedArray(key: "n"))
    }

    @Test("badAlignment: general.alignment must be a UINT32, nonzero power of two")
    func badAlignment() throws {
        try expectRejected(metadataOnly(B.kv("general.alignment", .uint64(32))), .badAlignment("must be UINT32, found uint64"))
        try expectRejected(metadataOnly(B.kv("general.alignment", .int32(32))), .badAlignment("must be UINT32, found int32"))
        try expectRejected(metadataOnly(B.kv("general.alignment", .string("32"))), .badAlignment("must be UINT32, found string"))
        for a: UInt32 in [0, 3, 48, 0xFFFF_FFFF] {
            try expectRejected(metadataOnly(B.kv("general.alignment", .uint32(a))), .badAlignment("\(a) is not a power of two"))
        }
        // Valid alignments are honoured: with 8, the second tensor starts 8 bytes after a 4-byte first one.
        let header = try accepted(B.file(metadata: [B.kv("general.alignment", .uint32(8))],
                                         tensors: [.f32("x", [1]), .f32("y", [2])], alignment: 8))
        #expect(header.alignment == 8 && header.dataOffset % 8 == 0 && header.tensors.map(\.offset) == [0, 8])
    }

    @Test("nameTooLong: a 64-byte tensor name is refused, 63 bytes is fine")
    func nameTooLong() throws {
        let long = String(repeating: "n", count: 64)
        try expectRejected(oneTensor(long), .nameTooLong(long))
        let multibyte = String(repeating: "é", count: 32)      // 64 UTF-8 bytes, 32 characters
        try expectRejected(oneTensor(multibyte), .nameTooLong(multibyte))
        let ok = String(repeating: "n", count: 63)
        #expect(try accepted(oneTensor(ok)).tensors.map(\.name) == [ok])
    }

    @Test("duplicateTensor: two tensor infos with one name")
    func duplicateTensor() throws {
        let bytes = B.file(tensors: [.f32("w", [1, 2]), .f32("v", [3]), .f32("w", [4])])
        try expectRejected(bytes, .duplicateTensor("w"))
    }

    @Test("tooManyDimensions: n_dims above 4 (GGML_MAX_DIMS)", arguments: [UInt32(5), 1_000_000, .max])
    func tooManyDimensions(_ nDims: UInt32) throws {
        var info = B.tensorInfo("w", ne: [1, 1, 1, 1], type: 0, offset: 0)
        info.replaceSubrange(9..<13, with: B.u32(nDims))
        try expectRejected(B.header(tensorCount: 1, kvCount: 0) + info + B.zeros(64), .tooManyDimensions(tensor: "w", count: nDims))
        // Four is the limit and fine.
        #expect(try accepted(oneTensor(ne: [1, 2, 1, 2])).tensors[0].dimensions == [1, 2, 1, 2])
    }

    @Test("negativeDimension: any ne below zero")
    func negativeDimension() throws {
        try expectRejected(oneTensor(ne: [-1]), .negativeDimension(tensor: "w"))
        try expectRejected(oneTensor(ne: [4, 1, .min]), .negativeDimension(tensor: "w"))
    }

    @Test("elementCountOverflow: the element count (or byte count) does not fit in int64")
    func elementCountOverflow() throws {
        try expectRejected(oneTensor(ne: [1 << 32, 1 << 32]), .elementCountOverflow(tensor: "w"))
        try expectRejected(oneTensor(ne: [2, 2, .max]), .elementCountOverflow(tensor: "w"))
        // The elements fit (2^62) but F32 bytes (2^64) do not.
        try expectRejected(oneTensor(ne: [4, 1 << 60]), .elementCountOverflow(tensor: "w"))
        try expectRejected(oneTensor(ne: [1 << 61]), .elementCountOverflow(tensor: "w"))
        // A zero dimension makes the product 0, whatever the others.
        let empty = try accepted(B.file(tensors: [B.Tensor("w", ne: [0, .max], type: 0, data: [])]))
        #expect(empty.tensors[0].byteCount == 0)
    }

    @Test("invalidTensorType: ids removed from the format, and ids past the opaque range",
          arguments: [UInt32(4), 5, 31, 32, 33, 36, 37, 38, 1024, .max])
    func invalidTensorType(_ id: UInt32) throws {
        try expectRejected(oneTensor(type: id), .invalidTensorType(tensor: "w", type: id))
    }

    @Test("an unknown future type id is kept as opaque bytes (up to the next tensor, or the file's end)")
    func opaqueFutureType() throws {
        let bytes = B.file(tensors: [B.Tensor("future", ne: [7, 3], type: 50, data: SafetensorsBytes.pattern(40)), .f32("after", [1, 2])])
        let header = try accepted(bytes)
        #expect(header.tensors[0].typeID == 50 && header.tensors[0].type == nil)
        #expect(header.tensors[0].byteCount == 64)                 // 40 bytes padded to the next tensor
        #expect(header.tensors[1].offset == 64 && header.tensors[1].type == .f32)
        let dir = try TemporaryDirectory(prefix: "gguf-opaque")
        let checkpoint = try GGUFReader.open(path: try dir.write(bytes, to: "o.gguf"))
        guard case .ggml(let t)? = checkpoint["future"]?.payload else { Issue.record("not a ggml payload"); return }
        #expect(t.typeID == 50 && t.type == nil && t.shape == Shape([3, 7]) && t.typeName == "ggml type 50")
        #expect(t.storage.array == SafetensorsBytes.pattern(40) + B.zeros(24))
        // Last in the file: everything up to the end, padding included.
        let last = try accepted(B.file(tensors: [B.Tensor("f", ne: [5], type: 43, data: SafetensorsBytes.pattern(5))]))
        #expect(last.tensors[0].type == nil && last.tensors[0].byteCount == 32)
        // Decoding an opaque type is refused by name, not attempted.
        #expect(throws: GGMLQuantizationError.unsupportedType(tensor: "future", type: "ggml type 50")) {
            try GGMLQuantization.dequantize(t, name: "future")
        }
    }

    @Test("rowNotWholeBlocks: ne[0] must be a whole number of blocks")
    func rowNotWholeBlocks() throws {
        try expectRejected(oneTensor(ne: [100, 2], type: GGMLType.q4_K.rawValue, dataBytes: 288),
                           .rowNotWholeBlocks(tensor: "w", rowLength: 100, type: "Q4_K"))
        try expectRejected(oneTensor(ne: [33], type: GGMLType.q8_0.rawValue, dataBytes: 34),
                           .rowNotWholeBlocks(tensor: "w", rowLength: 33, type: "Q8_0"))
        // No dimensions: one element, not a whole Q4_0 block.
        try expectRejected(oneTensor(ne: [], type: GGMLType.q4_0.rawValue, dataBytes: 18),
                           .rowNotWholeBlocks(tensor: "w", rowLength: 1, type: "Q4_0"))
        // 256 is one Q4_K block per row.
        let ok = try accepted(oneTensor(ne: [256, 2], type: GGMLType.q4_K.rawValue, dataBytes: 288))
        #expect(ok.tensors[0].byteCount == 288 && ok.tensors[0].type == .q4_K)
    }

    @Test("offsetMismatch: data must be contiguous, aligned and in tensor-info order")
    func offsetMismatch() throws {
        func two(_ a: UInt64?, _ b: UInt64?) -> [UInt8] {
            B.file(tensors: [B.Tensor("a", ne: [3], type: 0, data: SafetensorsBytes.pattern(12), offset: a),
                             B.Tensor("b", ne: [3], type: 0, data: SafetensorsBytes.pattern(12), offset: b)])
        }
        #expect(try B.parse(two(nil, nil)).tensors.map(\.offset) == [0, 32])
        try expectRejected(two(nil, 16), .offsetMismatch(tensor: "b", expected: 32, actual: 16))      // misaligned
        try expectRejected(two(nil, 12), .offsetMismatch(tensor: "b", expected: 32, actual: 12))      // unpadded
        try expectRejected(two(nil, 0), .offsetMismatch(tensor: "b", expected: 32, actual: 0))        // overlapping
        try expectRejected(two(nil, 64), .offsetMismatch(tensor: "b", expected: 32, actual: 64))      // a gap
        try expectRejected(two(32, 0), .offsetMismatch(tensor: "a", expected: 0, actual: 32))         // out of order
        try expectRejected(two(nil, .max), .offsetMismatch(tensor: "b", expected: 32, actual: .max))
        // An opaque tensor whose successor starts before it.
        let opaque = B.file(tensors: [.f32("a", [1]), B.Tensor("o", ne: [4], type: 60, data: [1, 2, 3, 4]),
                                      B.Tensor("b", ne: [1], type: 0, data: [0, 0, 0, 0], offset: 0)])
        try expectRejected(opaque, .offsetMismatch(tensor: "b", expected: 32, actual: 0))
    }

    @Test("dataOutOfBounds: a tensor whose data runs past the end of the file")
    func dataOutOfBounds() throws {
        // Claims [1024] F32 (4096 bytes) but holds 16.
        try expectRejected(B.file(tensors: [B.Tensor("w", ne: [1024], type: 0, data: SafetensorsBytes.pattern(16))]),
                           .dataOutOfBounds(tensor: "w"))
        // A huge but representable size.
        try expectRejected(B.file(tensors: [B.Tensor("w", ne: [1 << 40], type: 0, data: SafetensorsBytes.pattern(16))]),
                           .dataOutOfBounds(tensor: "w"))
        // The second of two.
        try expectRejected(B.file(tensors: [.f32("a", [1]), B.Tensor("b", ne: [9], type: 0, data: SafetensorsBytes.pattern(16))]),
                           .dataOutOfBounds(tensor: "b"))
        // An opaque tensor followed by one whose offset lies far beyond the file.
        let opaque = B.file(tensors: [B.Tensor("o", ne: [4], type: 60, data: [1, 2, 3, 4]),
                                      B.Tensor("b", ne: [1], type: 0, data: [0, 0, 0, 0], offset: 1 << 20)])
        try expectRejected(opaque, .dataOutOfBounds(tensor: "o"))
    }

    @Test("trailingBytes: bytes after the last tensor's padding, or after a tensor-less header")
    func trailingBytes() throws {
        let n = Valid.bytes.count
        try expectRejected(Valid.bytes + [0], .trailingBytes(expectedEnd: n, fileSize: n + 1))
        try expectRejected(Valid.bytes + B.zeros(32), .trailingBytes(expectedEnd: n, fileSize: n + 32))
        // No tensors: the file ends at the header, or at its padding, and nowhere else.
        let header = B.file(metadata: [Valid.kv0])                       // 69 bytes
        try expectRejected(header + B.zeros(B.alignUp(69, 32) - 69 + 1), .trailingBytes(expectedEnd: 96, fileSize: 97))
        try expectRejected(header + B.zeros(64), .trailingBytes(expectedEnd: 96, fileSize: 133))
    }

    /// A fuzzing finding: tensors of unknown (future) type ids declared ~2^62 elements each over a few
    /// bytes, and summing element counts (`Checkpoint.parameterCount`, `inspect`) trapped on overflow.
    @Test("an opaque type may not declare more elements than 8 per stored byte")
    func opaqueElementsExceedData() throws {
        let bytes = B.file(tensors: [B.Tensor("w", ne: [1 << 40], type: 50, data: B.zeros(32))])
        #expect(throws: GGUFError(file: "memory.gguf", kind: .opaqueElementsExceedData(tensor: "w", elements: 1 << 40, bytes: 32))) {
            try B.parse(bytes)
        }
        // 8 elements per byte is still read (as opaque bytes).
        #expect(try B.parse(B.file(tensors: [B.Tensor("w", ne: [256], type: 50, data: B.zeros(32))])).tensors.count == 1)
    }

    @Test("every GGUFError.Kind has a test above and a one-line message naming the file")
    func everyKindCovered() {
        let samples: [GGUFError.Kind] = [
            .truncated("the magic"), .badMagic, .unsupportedVersion(4), .bigEndian, .countTooLarge(what: "tensor", count: 9),
            .stringTooLong(context: "metadata key #0", length: 9), .invalidUTF8(context: "metadata key #0"), .emptyKey,
            .duplicateKey("k"), .unknownValueType(key: "k", type: 13), .nestedArray(key: "k"), .badAlignment("0 is not a power of two"),
            .nameTooLong("n"), .duplicateTensor("w"), .tooManyDimensions(tensor: "w", count: 5), .negativeDimension(tensor: "w"),
            .elementCountOverflow(tensor: "w"), .invalidTensorType(tensor: "w", type: 4),
            .rowNotWholeBlocks(tensor: "w", rowLength: 100, type: "Q4_K"), .offsetMismatch(tensor: "w", expected: 32, actual: 16),
            .dataOutOfBounds(tensor: "w"), .trailingBytes(expectedEnd: 64, fileSize: 65),
            .opaqueElementsExceedData(tensor: "w", elements: 1 << 40, bytes: 32),
        ]
        for kind in samples {
            // No default: a new case does not compile until it is listed here (and tested above).
            switch kind {
            case .truncated, .badMagic, .unsupportedVersion, .bigEndian, .countTooLarge, .stringTooLong, .invalidUTF8, .emptyKey,
                 .duplicateKey, .unknownValueType, .nestedArray, .badAlignment, .nameTooLong, .duplicateTensor, .tooManyDimensions,
                 .negativeDimension, .elementCountOverflow, .invalidTensorType, .rowNotWholeBlocks, .offsetMismatch, .dataOutOfBounds,
                 .trailingBytes, .opaqueElementsExceedData:
                break
            }
            let text = GGUFError(file: "f.gguf", kind: kind).description
            #expect(text.hasPrefix("f.gguf: ") && text.count > 10 && !text.contains("\n"), "\(text)")
        }
        #expect(GGUFError(file: "f", kind: .unsupportedVersion(1)).description == "f: GGUF v1 is no longer supported")
        #expect(GGUFError(file: "f", kind: .rowNotWholeBlocks(tensor: "w", rowLength: 100, type: "Q4_K")).description
                == "f: tensor 'w': row length 100 is not a multiple of the Q4_K block size")
    }

    // MARK: Files the C reader or gguf-py accept

    @Test("a v2 file is read like v3")
    func version2() throws {
        var bytes = Valid.bytes
        bytes.replaceSubrange(4..<8, with: B.u32(2))
        let header = try accepted(bytes)
        #expect(header.version == 2 && header.tensors.map(\.name) == ["a", "b"])
    }

    @Test("zero tensors: the file may end right after the KVs, or after padding to the alignment")
    func zeroTensors() throws {
        let bare = try accepted(B.file(metadata: [Valid.kv0]))
        #expect(bare.tensors.isEmpty && bare.metadata.count == 1 && bare.dataOffset == 96)
        let padded = try accepted(B.file(metadata: [Valid.kv0], padEmptyHeader: true))
        #expect(padded.tensors.isEmpty && padded.metadata.count == 1)
        #expect(try accepted(B.header(tensorCount: 0, kvCount: 0)).metadata.isEmpty)
        #expect(try accepted(B.file(padEmptyHeader: true)).metadata.isEmpty)
    }

    @Test("the padding after the last tensor may be missing, or cut short")
    func missingFinalPadding() throws {
        let unpadded = B.file(tensors: [.f32("a", [1, 2, 3]), .f32("b", [4, 5, 6, 7, 8])], padLast: false)
        let header = try accepted(unpadded)
        #expect(unpadded.count == header.dataOffset + 32 + 20)
        #expect(header.tensors.map(\.byteCount) == [12, 20])
        let dir = try TemporaryDirectory(prefix: "gguf-pad")
        let checkpoint = try GGUFReader.open(path: try dir.write(unpadded, to: "p.gguf"))
        #expect(try denseTensor(checkpoint, "b").floats() == [4, 5, 6, 7, 8])
        // Part of the padding, as a writer interrupted after the data would leave it.
        let partial = Array(Valid.bytes.dropLast(5))
        #expect(try accepted(partial).tensors.map(\.byteCount) == [24, 20])
    }

    // MARK: Mutations

    /// A valid file written by `GGUFWriter`: metadata of many types, F32, F16, Q8_0 and Q4_K tensors.
    static func writerFile() throws -> [UInt8] {
        var rng = SeededGenerator(seed: 0x6767_7566)
        let f32 = try DenseTensor(floats: rng.gaussianFloats(count: 2 * 40), shape: Shape([2, 40]))
        let f16 = try DenseTensor(floats: rng.gaussianFloats(count: 9), shape: Shape([9]), dtype: .f16)
        let q8 = try GGMLQuantization.quantize(try DenseTensor(floats: rng.gaussianFloats(count: 2 * 64), shape: Shape([2, 64])),
                                               name: "q8", to: .q8_0)
        let q4 = try GGMLQuantization.quantize(try DenseTensor(floats: rng.gaussianFloats(count: 256), shape: Shape([1, 256])),
                                               name: "q4", to: .q4_K)
        let metadata: [(String, GGUFValue)] = [
            ("general.architecture", .string("llama")), ("llama.block_count", .uint32(1)), ("t.i64", .int64(-5)),
            ("t.f32", .float32(0.5)), ("t.bool", .bool(true)),
            ("t.strs", .array(elementType: .string, values: [.string("a"), .string("bc")])),
            ("t.ints", .array(elementType: .int32, values: [.int32(1), .int32(2), .int32(3)])),
        ]
        let checkpoint = try Checkpoint(
            entries: [TensorEntry(name: "f32", tensor: f32), TensorEntry(name: "f16", tensor: f16),
                      TensorEntry(name: "blk.0.q8", payload: .ggml(q8)), TensorEntry(name: "blk.0.q4", payload: .ggml(q4))],
            metadata: metadata.map { MetadataEntry(key: $0.0, value: .gguf($0.1)) })
        let dir = try TemporaryDirectory(prefix: "gguf-mutate")
        let path = dir.url("w.gguf")
        try GGUFWriter.write(checkpoint, to: path)
        return try TemporaryDirectory.read(path)
    }

    @Test("500 seeded mutations of a written file: each throws a GGUFError or reads consistently, never crashes",
          .timeLimit(.minutes(1)))
    func mutations() throws {
        let original = try Self.writerFile()
        let header = try B.parse(original)
        #expect(header.tensors.map(\.name) == ["f32", "f16", "blk.0.q8", "blk.0.q4"])
        var rng = SeededGenerator(seed: 20_240_601)
        func below(_ n: Int) -> Int { Int(rng.next() % UInt64(max(n, 1))) }
        var rejected = 0, acceptedCount = 0
        for iteration in 0..<500 {
            var bytes = original
            switch iteration % 5 {
            case 0:     // flip one to four random bytes
                for _ in 0...below(4) { bytes[below(bytes.count)] ^= UInt8(1 + below(255)) }
            case 1:     // truncate anywhere
                bytes.removeLast(1 + below(bytes.count))
            case 2:     // a large value over a random u64 slot in the header
                let at = below(header.dataOffset - 8)
                bytes.replaceSubrange(at..<(at + 8), with: B.u64([UInt64.max, 1 << 31, 1 << 62, UInt64(bytes.count)][below(4)]))
            case 3:     // flip a byte in the header, then truncate or extend
                bytes[below(header.dataOffset)] ^= UInt8(1 + below(255))
                if below(2) == 0 { bytes.removeLast(below(64)) } else { bytes += SafetensorsBytes.pattern(below(64)) }
            default:    // flip a byte of the header's counts / sizes area near a length field
                let at = 8 + below(header.dataOffset - 8)
                bytes[at] = [0x00, 0xFF, 0x80, 0x7F][below(4)]
            }
            let parsed: GGUFHeader
            do {
                parsed = try B.parse(bytes, file: "m.gguf")
            } catch {
                rejected += 1
                #expect(error.file == "m.gguf")
                continue
            }
            acceptedCount += 1
            do {
                // Whatever was accepted must describe bytes inside the file, in order, and decode.
                var end = parsed.dataOffset
                for t in parsed.tensors {
                    #expect(parsed.dataOffset + t.offset >= end && parsed.dataOffset + t.offset + t.byteCount <= bytes.count,
                            "iteration \(iteration): tensor \(t.name) out of bounds")
                    end = parsed.dataOffset + t.offset + t.byteCount
                    let storage = ByteStorage(Array(bytes[(parsed.dataOffset + t.offset)..<end]))
                    if let type = t.type, let dtype = type.denseDType {
                        let dense = try DenseTensor(dtype: dtype, shape: t.shape, storage: storage)
                        if dtype.isConvertibleFloat { _ = try dense.floats() }
                    } else if let type = t.type, t.shape.elementCount < 1 << 20 {
                        _ = try? GGMLQuantization.dequantize(GGMLTensor(type: type, shape: t.shape, storage: storage), name: t.name)
                    }
                }
            } catch {
                Issue.record("iteration \(iteration): an accepted file did not decode: \(error)")
            }
        }
        // Both outcomes occur: data-byte flips are accepted, header damage is refused.
        #expect(rejected > 100 && acceptedCount > 20, "rejected \(rejected), accepted \(acceptedCount)")
    }
}
