import Foundation
import Testing
import TensorCore
import CheckpointFormats

@Suite("GGUF reader and writer")
struct GGUFRoundTripTests {
    static let allValues: [(String, GGUFValue)] = [
        ("general.architecture", .string("llama")),
        ("t.u8", .uint8(200)), ("t.i8", .int8(-100)), ("t.u16", .uint16(60000)), ("t.i16", .int16(-30000)),
        ("t.u32", .uint32(4_000_000_000)), ("t.i32", .int32(-2_000_000_000)), ("t.f32", .float32(-1.5)),
        ("t.bool", .bool(true)), ("t.str", .string("héllo")), ("t.u64", .uint64(.max)), ("t.i64", .int64(.min)),
        ("t.f64", .float64(0.1)),
        ("t.strings", .array(elementType: .string, values: [.string("a"), .string(""), .string("ccc")])),
        ("t.ints", .array(elementType: .int32, values: [.int32(1), .int32(-2)])),
        ("t.empty", .array(elementType: .float32, values: [])),
    ]

    func temporaryPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-rt-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }

    @Test("every metadata type, dense and block tensors survive write → read → write byte for byte")
    func roundTrip() throws {
        var rng = SeededGenerator(seed: 8)
        let a = try DenseTensor(floats: rng.gaussianFloats(count: 3 * 40), shape: Shape([3, 40]))
        let b = try DenseTensor(floats: rng.gaussianFloats(count: 7), shape: Shape([7]), dtype: .f16)
        let ints = try DenseTensor(dtype: .i32, shape: Shape([2, 2]), storage: ByteStorage((0..<16).map { UInt8($0) }))
        let q8 = GGMLTensor(type: .q8_0, shape: Shape([2, 64]), storage: ByteStorage((0..<136).map { UInt8($0 % 251) }))
        let checkpoint = try Checkpoint(
            entries: [TensorEntry(name: "a", tensor: a), TensorEntry(name: "b", tensor: b),
                      TensorEntry(name: "ints", tensor: ints), TensorEntry(name: "blk.0.attn_q.weight", payload: .ggml(q8))],
            metadata: Self.allValues.map { MetadataEntry(key: $0.0, value: .gguf($0.1)) })
        let path = temporaryPath("a.gguf")
        try GGUFWriter.write(checkpoint, to: path)
        let back = try GGUFReader.open(path: path)
        #expect(back.metadata == checkpoint.metadata)
        #expect(back.entries.map(\.name) == ["a", "b", "ints", "blk.0.attn_q.weight"])
        guard case .dense(let a2) = back.entries[0].payload, case .dense(let b2) = back.entries[1].payload,
              case .ggml(let q2) = back.entries[3].payload else { Issue.record("payload kinds changed"); return }
        #expect(a2 == a && b2 == b)
        #expect(q2.type == .q8_0 && q2.shape == Shape([2, 64]) && q2.storage == q8.storage)
        let again = temporaryPath("b.gguf")
        try GGUFWriter.write(back, to: again)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(contentsOf: URL(fileURLWithPath: again)))
    }

    @Test("layout: magic, version 3, counts, 32-byte aligned data, padding after every tensor")
    func layout() throws {
        let t = try DenseTensor(floats: [1, 2, 3], shape: Shape([3]))
        let checkpoint = try Checkpoint(entries: [TensorEntry(name: "x", tensor: t), TensorEntry(name: "y", tensor: t)],
                                        metadata: [MetadataEntry(key: "general.architecture", value: .string("llama"))])
        let path = temporaryPath("l.gguf")
        try GGUFWriter.write(checkpoint, to: path)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(Array(bytes[0..<24]) == [0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
        // KV: u64 20, "general.architecture", type 8 (string), u64 5, "llama"
        #expect(Array(bytes[24..<32]) == [20, 0, 0, 0, 0, 0, 0, 0])
        #expect(String(decoding: bytes[32..<52], as: UTF8.self) == "general.architecture")
        let header = try bytes.withUnsafeBytes { try GGUFHeader(fileBytes: $0, file: path) }
        #expect(header.dataOffset % 32 == 0)
        #expect(header.tensors.map(\.offset) == [0, 32])                      // 12 bytes padded to 32
        #expect(bytes.count == header.dataOffset + 64)                          // the last tensor is padded too
        #expect(bytes[(header.dataOffset + 12)..<(header.dataOffset + 32)].allSatisfy { $0 == 0 })
    }

    @Test("general.alignment is honoured when set")
    func customAlignment() throws {
        let t = try DenseTensor(floats: [1], shape: Shape([1]))
        let checkpoint = try Checkpoint(entries: [TensorEntry(name: "x", tensor: t), TensorEntry(name: "y", tensor: t)],
                                        metadata: [MetadataEntry(key: "general.alignment", value: .gguf(.uint32(64)))])
        let path = temporaryPath("al.gguf")
        try GGUFWriter.write(checkpoint, to: path)
        let file = try MappedFile(path: path)
        let header = try GGUFReader.header(of: file)
        #expect(header.alignment == 64 && header.dataOffset % 64 == 0 && header.tensors[1].offset == 64)
    }
}
