import Foundation
import Testing
import TensorCore
@testable import CheckpointFormats
import TestSupport

/// Mixed-width tensors in safetensors (`mixed-column-quantized`) and GGUF: write → read gives back
/// the identical tensor, directly and through `.zst`, stored as the documented parts, and the
/// arithmetic size equals the bytes of exactly those parts.
@Suite("Mixed-width layout in safetensors and GGUF")
struct MixedWidthLayoutTests {
    /// asym [6, 11] widths 0...8 with F32 scales; sym [3, 2, 5] (rank 3); sym with one width; a vector;
    /// every column of width 0 (no scales at all).
    static func samples() -> [(name: String, tensor: QuantizedTensor)] {
        [("layers.0.mlp.up_proj.weight", MixedWidthSamples.make([6, 11], widths: [3, 0, 5, 8, 2, 4, 6, 7, 1, 3, 4], symmetric: false, seed: 1, halfScales: false)),
         ("layers.0.mlp.down_proj.weight", MixedWidthSamples.make([3, 2, 5], widths: [2, 4, 0, 4], symmetric: true, seed: 2)),
         ("layers.0.self_attn.q_proj.weight", MixedWidthSamples.make([4, 9], widths: [4], symmetric: true, seed: 3)),
         ("layers.0.self_attn.k_proj.weight", MixedWidthSamples.make([7], widths: [8, 2, 0], symmetric: false, seed: 4)),
         ("layers.0.self_attn.v_proj.weight", MixedWidthSamples.make([2, 3], widths: [0], symmetric: false, seed: 5))]
    }

    static func checkpoint() throws -> Checkpoint {
        let norm = try DenseTensor(floats: [1, 2, 3], shape: Shape([3]))
        return try Checkpoint(entries: [TensorEntry(name: "model.norm.weight", tensor: norm)]
                                  + samples().map { TensorEntry(name: $0.name, payload: .quantized($0.tensor)) },
                              metadata: [MetadataEntry(key: "format", value: .string("pt"))])
    }

    /// The stored part `name` of a file read without collapsing.
    static func dense(_ raw: Checkpoint, _ name: String) throws -> DenseTensor {
        guard case .dense(let t)? = raw[name]?.payload else { throw TestFailure("no dense part '\(name)'") }
        return t
    }

    static func expectSameTensors(_ back: Checkpoint, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let original = try checkpoint()
        #expect(back.entries.map(\.name) == original.entries.map(\.name), sourceLocation: sourceLocation)
        for (name, q) in samples() {
            guard case .quantized(let read)? = back[name]?.payload else { Issue.record("\(name) not read back", sourceLocation: sourceLocation); continue }
            #expect(read == q, "\(name)", sourceLocation: sourceLocation)
            #expect(read.scales.map(\.bitPattern) == q.scales.map(\.bitPattern), sourceLocation: sourceLocation)
        }
    }

    @Test("encoding names give the narrowest and widest column")
    func encodingNames() {
        #expect(Self.samples().map(\.tensor.encodingName)
                == ["int0-8 asym channel mixed", "int0-4 sym channel mixed", "int4 sym channel mixed", "int0-8 asym channel mixed", "int0 asym channel mixed"])
    }

    @Test("safetensors: the documented parts, the scheme record with its format, the exact size, and the same tensors back")
    func safetensors() throws {
        let dir = try TemporaryDirectory(prefix: "mixed-st")
        let path = dir.url("q.safetensors")
        try SafetensorsWriter.write(try Self.checkpoint(), to: path)
        let raw = try SafetensorsReader.open(path: path)
        let up = "layers.0.mlp.up_proj", down = "layers.0.mlp.down_proj"
        func part(_ name: String) throws -> DenseTensor { try Self.dense(raw, name) }
        // up: Σb = 43 bits (6 bytes per row); widths 1...8 all present (K = 8); F32 scales.
        #expect(raw.entries.map(\.name).prefix(7) == ["model.norm.weight", up + ".weight_packed", up + ".weight_scale", up + ".weight_zero_point",
                                                      up + ".weight_column_bits", up + ".weight_shape", down + ".weight_packed"])
        #expect(try part(up + ".weight_packed").dtype == .u8 && part(up + ".weight_packed").shape == Shape([6, 6]))
        #expect(try part(up + ".weight_scale").dtype == .f32 && part(up + ".weight_scale").shape == Shape([6, 8]))
        #expect(try part(up + ".weight_zero_point").dtype == .u8 && part(up + ".weight_zero_point").shape == Shape([6, 8]))
        #expect(try part(up + ".weight_column_bits").storage.array == [3, 0, 5, 8, 2, 4, 6, 7, 1, 3, 4])
        // down (symmetric, rank 3, 10 columns): no zero points, F16 scales [3, 2], Σb = 26 bits (4 bytes per row).
        #expect(raw[down + ".weight_zero_point"] == nil)
        #expect(try part(down + ".weight_scale").dtype == .f16 && part(down + ".weight_scale").shape == Shape([3, 2]))
        #expect(try part(down + ".weight_packed").shape == Shape([3, 4]))
        let record = try JSONParser.parse(Array(try #require(raw.metadataValue(CompressedTensorsLayout.metadataKey)).description.utf8))
        #expect(record[up + ".weight"]?["format"]?.stringValue == "mixed-column-quantized")
        #expect(record[up + ".weight"]?["bits"]?.nonNegativeInt == 8)
        #expect(record[up + ".weight"]?["granularity"]?.stringValue == "channel")

        let back = try CheckpointReader.open(path: path)
        try Self.expectSameTensors(back)
        #expect(back.metadata == [MetadataEntry(key: "format", value: .string("pt"))])
        for (name, q) in Self.samples() {
            let parts = try CompressedTensorsLayout.encode(name: name, q)
            #expect(CompressedTensorsLayout.storedByteCount(q) == parts.reduce(0) { $0 + $1.tensor.byteCount }, "\(name)")
            #expect(TensorEntry(name: name, payload: .quantized(q)).byteCount == CompressedTensorsLayout.storedByteCount(q))
        }
    }

    @Test("GGUF: the documented parts and keys, the exact size, and the same tensors back")
    func gguf() throws {
        let dir = try TemporaryDirectory(prefix: "mixed-gguf")
        let path = dir.url("q.gguf")
        try GGUFWriter.write(try Self.checkpoint(), to: path)
        let raw = try GGUFReader.open(path: path)
        let up = "layers.0.mlp.up_proj.weight"
        func part(_ name: String) throws -> DenseTensor { try Self.dense(raw, name) }
        #expect(try part(up).dtype == .i8 && part(up).shape == Shape([6, 6]))
        #expect(try part(up + ".scale").dtype == .f32 && part(up + ".scale").shape == Shape([6, 8]))
        #expect(try part(up + ".zero_point").shape == Shape([6, 8]))
        #expect(try part(up + ".column_bits").dtype == .i8 && part(up + ".column_bits").storage.array == [3, 0, 5, 8, 2, 4, 6, 7, 1, 3, 4])
        #expect(raw.metadataValue("modelpress.quantization.\(up).format") == .gguf(.string("mixed-column-quantized")))
        #expect(raw.metadataValue("modelpress.quantization.\(up).bits") == .gguf(.uint32(8)))
        try Self.expectSameTensors(try CheckpointReader.open(path: path))
        for (name, q) in Self.samples() {
            let parts = try GGUFQuantizedLayout.encode(name: name, q)
            #expect(GGUFQuantizedLayout.storedByteCount(q) == parts.reduce(0) { $0 + $1.tensor.byteCount }, "\(name)")
            #expect(TensorEntry(name: name, payload: .quantized(q)).byteCount(in: .gguf) == GGUFQuantizedLayout.storedByteCount(q))
        }
    }

    @Test("2^60 rows of no columns (all parts empty) go through both layouts without a pass over the rows")
    func hugeEmpty() throws {
        let q = QuantizedTensor(shape: Shape([1 << 60, 0]), symmetric: false, columnBits: [], codes: [], scales: [], zeroPoints: [])
        let checkpoint = try Checkpoint(entries: [TensorEntry(name: "e.weight", payload: .quantized(q))])
        let fromSafetensors = try CompressedTensorsLayout.collapse(CompressedTensorsLayout.expand(checkpoint), file: "m.safetensors")
        let fromGGUF = try GGUFQuantizedLayout.collapse(GGUFQuantizedLayout.expand(checkpoint), file: "m.gguf")
        for back in [fromSafetensors, fromGGUF] {
            guard case .quantized(let read)? = back["e.weight"]?.payload else { Issue.record("not read back"); continue }
            #expect(read == q && read.dequantized().isEmpty)
        }
        #expect(CompressedTensorsLayout.storedByteCount(q) == 8 * 2 && GGUFQuantizedLayout.storedByteCount(q) == 0)
    }

    @Test("a non-finite scale (a range wider than F32's) is refused by both writers, naming the tensor")
    func nonFiniteScale() throws {
        let q = QuantizedTensor(shape: Shape([1, 2]), symmetric: false, columnBits: [2, 0], codes: [3, 0], scales: [.infinity], zeroPoints: [1])
        let checkpoint = try Checkpoint(entries: [TensorEntry(name: "h.weight", payload: .quantized(q))])
        #expect(throws: CompressedTensorsError.unsupported(tensor: "h.weight", what: "a mixed-width tensor with scale inf")) {
            try CompressedTensorsLayout.expand(checkpoint)
        }
        #expect(throws: GGUFQuantizedLayoutError.unstorable(tensor: "h.weight", reason: "scale inf is not finite")) {
            try GGUFQuantizedLayout.expand(checkpoint)
        }
    }

    @Test("through .zst: the same tensors back from safetensors and GGUF", arguments: [false, true])
    func zstd(gguf: Bool) throws {
        let dir = try TemporaryDirectory(prefix: "mixed-zst")
        let path = dir.url(gguf ? "q.gguf.zst" : "q.safetensors.zst")
        let checkpoint = try Self.checkpoint()
        try ZstdCheckpoint.write(to: path, threadCount: 2) { inner in
            if gguf { try GGUFWriter.write(checkpoint, to: inner) } else { try SafetensorsWriter.write(checkpoint, to: inner) }
        }
        try Self.expectSameTensors(try CheckpointReader.open(path: path))
    }
}
