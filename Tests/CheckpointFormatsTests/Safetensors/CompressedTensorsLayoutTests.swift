import Foundation
import Testing
import TensorCore
@testable import CheckpointFormats

@Suite("Compressed-tensors layout for quantized tensors")
struct CompressedTensorsLayoutTests {
    static func quantized(bits: Int, symmetric: Bool, granularity: QuantizedTensor.Granularity, shape: Shape, seed: UInt64) -> QuantizedTensor {
        var rng = SeededGenerator(seed: seed)
        let codes = (0..<shape.elementCount).map { _ in UInt8(rng.next() % UInt64(1 << bits)) }
        let groups: Int = switch granularity {
        case .tensor: 1
        case .channel: shape.rowCount
        case .group(let n): shape.rowCount * (shape.columnCount / n)
        }
        let scales = (0..<groups).map { _ in HalfPrecision.float(halfBits: HalfPrecision.halfBits(Float(rng.nextUnitDouble()) * 0.1 + 0.001)) }
        let zeros = (0..<groups).map { _ in symmetric ? Int32(1 << (bits - 1)) : Int32(rng.next() % UInt64(1 << bits)) }
        return QuantizedTensor(shape: shape, bits: bits, symmetric: symmetric, granularity: granularity, codes: codes, scales: scales, zeroPoints: zeros)
    }

    @Test("4-bit codes 1...8 pack into one int32 0x87654321, least significant nibble first")
    func packing() throws {
        let words = CompressedTensorsLayout.packWords([1, 2, 3, 4, 5, 6, 7, 8, 9], rows: 1, columns: 9, bits: 4)
        #expect(words == [0x8765_4321, 0x9])
        #expect(CompressedTensorsLayout.unpackWords(words, rows: 1, columns: 9, bits: 4) == [1, 2, 3, 4, 5, 6, 7, 8, 9])
        // 3 bits: 10 codes per word, 2 bits unused.
        let three = CompressedTensorsLayout.packWords([7, 0, 7, 0, 7, 0, 7, 0, 7, 0, 5], rows: 1, columns: 11, bits: 3)
        #expect(three == [0b000_111_000_111_000_111_000_111_000_111, 5])
    }

    @Test("write → read gives back every quantized tensor exactly, in place, with names like compressed-tensors",
          arguments: [(4, true, QuantizedTensor.Granularity.group(32)), (3, false, .channel), (8, false, .tensor), (2, false, .group(16)), (5, true, .channel)])
    func roundTrip(bits: Int, symmetric: Bool, granularity: QuantizedTensor.Granularity) throws {
        let q = Self.quantized(bits: bits, symmetric: symmetric, granularity: granularity, shape: Shape([37, 64]), seed: UInt64(bits))
        let norm = try DenseTensor(floats: [1, 2, 3], shape: Shape([3]))
        let fp8 = QuantizedTensor(shape: Shape([2, 3]), scheme: .float8(.e4m3), bits: 8, symmetric: true, granularity: .channel,
                                  codes: [0x38, 0x00, 0xFE, 0x01, 0x7E, 0x80], scales: [0.5, 2], zeroPoints: [0, 0])
        let checkpoint = try Checkpoint(entries: [TensorEntry(name: "model.norm.weight", tensor: norm),
                                                  TensorEntry(name: "layers.0.mlp.up_proj.weight", payload: .quantized(q)),
                                                  TensorEntry(name: "layers.0.mlp.down_proj.weight", payload: .quantized(fp8))],
                                        metadata: [MetadataEntry(key: "format", value: .string("pt"))])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ct-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("q.safetensors").path
        try SafetensorsWriter.write(checkpoint, to: path)
        let raw = try SafetensorsReader.open(path: path)
        var expectedParts = ["model.norm.weight", "layers.0.mlp.up_proj.weight_packed", "layers.0.mlp.up_proj.weight_scale"]
        if !symmetric { expectedParts.append("layers.0.mlp.up_proj.weight_zero_point") }
        expectedParts += ["layers.0.mlp.up_proj.weight_shape", "layers.0.mlp.down_proj.weight", "layers.0.mlp.down_proj.weight_scale"]
        #expect(raw.entries.map(\.name) == expectedParts)
        let back = try CheckpointReader.open(path: path)
        #expect(back.entries.map(\.name) == checkpoint.entries.map(\.name))
        #expect(back.metadata == checkpoint.metadata)
        guard case .quantized(let q2) = back.entries[1].payload, case .quantized(let f2) = back.entries[2].payload else {
            Issue.record("not quantized after reading"); return
        }
        #expect(q2 == q)
        #expect(f2 == fp8)
        // The arithmetic size (used by inspect and reports) equals what encode writes.
        for (name, tensor) in [("a.weight", q), ("b.weight", fp8)] {
            let written = try CompressedTensorsLayout.encode(name: name, tensor).reduce(0) { $0 + $1.tensor.byteCount }
            #expect(CompressedTensorsLayout.storedByteCount(tensor) == written)
        }
    }

    @Test("a part that does not fit is reported naming the tensor")
    func malformed() throws {
        let q = Self.quantized(bits: 4, symmetric: true, granularity: .channel, shape: Shape([4, 8]), seed: 1)
        let expanded = try CompressedTensorsLayout.expand(try Checkpoint(entries: [TensorEntry(name: "w.weight", payload: .quantized(q))]))
        var entries = expanded.entries
        let index = entries.firstIndex { $0.name == "w.weight_scale" }!
        entries[index] = TensorEntry(name: "w.weight_scale", tensor: try DenseTensor(floats: [1, 2, 3], shape: Shape([3])))
        let broken = try Checkpoint(entries: entries, metadata: expanded.metadata)
        #expect(throws: CompressedTensorsError.malformed(tensor: "w.weight", reason: "f: 3 scales, expected 4")) {
            try CompressedTensorsLayout.collapse(broken, file: "f")
        }
    }
}
