import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// The compact sparse layouts with numpy (`Tests/Interop/sparse_interop.py`): numpy decodes our
/// `sparse-bitmask` (with `numpy.unpackbits(..., bitorder="little")`) and `sparse-n-of-m` parts to our
/// dense tensors bit for bit, and we read a file laid out the way compressed-tensors' bitmask
/// compressor writes it (no ModelPress metadata) to numpy's dense tensors.
@Suite("Sparse layout with numpy")
struct SparseInteropTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Tests/Interop/sparse_interop.py").path

    @Test("numpy unpacks our bitmasks and N:M positions and gets every dense tensor back bit for bit")
    func numpyDecodesOurs() throws {
        let folder = try TemporaryDirectory(prefix: "sparse-interop")
        var specials = try SparseSamples.unstructured([5, 11], dtype: .f32, zeroCount: 40, seed: 44).storage.array
        // A −0.0 and a NaN with a payload among the values: numpy must move bits, not floats.
        for (i, bits) in [(3, UInt32(0x8000_0000)), (20, 0x7FC0_1234)] as [(Int, UInt32)] {
            specials.replaceSubrange(4 * i..<(4 * i + 4), with: withUnsafeBytes(of: bits.littleEndian, Array.init))
        }
        let samples: [(String, DenseTensor, SparsityPattern)] = [
            ("layers.0.mlp.up_proj.weight", try SparseSamples.unstructured([24, 37], dtype: .f32, zeroCount: 700, seed: 41), .unstructured),
            ("layers.0.mlp.down_proj.weight", try SparseSamples.unstructured([3, 4, 20], dtype: .bf16, zeroCount: 200, seed: 42), .unstructured),
            ("layers.0.norm", try SparseSamples.unstructured([45], dtype: .f16, zeroCount: 40, seed: 43), .unstructured),
            ("layers.0.special.weight", try DenseTensor(dtype: .f32, shape: Shape([5, 11]), storage: ByteStorage(specials)), .unstructured),
            ("layers.1.q_proj.weight", try SparseSamples.nOfM([8, 32], dtype: .f16, kept: 2, group: 4, seed: 45, underfilled: true), .nOfM(kept: 2, group: 4)),
            ("layers.1.k_proj.weight", try SparseSamples.nOfM([2, 3, 48], dtype: .bf16, kept: 4, group: 8, seed: 46, underfilled: true), .nOfM(kept: 4, group: 8)),
            ("layers.1.v_proj.weight", try SparseSamples.nOfM([6, 24], dtype: .f32, kept: 1, group: 4, seed: 47), .nOfM(kept: 1, group: 4)),
            ("layers.1.o_proj.weight", try SparseSamples.nOfM([4, 36], dtype: .f32, kept: 2, group: 6, seed: 48, underfilled: true), .nOfM(kept: 2, group: 6)),
        ]
        var entries = [TensorEntry(name: "model.embed.weight", tensor: try DenseTensor(floats: [1, 2, 3], shape: Shape([3])))]
        for (name, t, pattern) in samples {
            #expect(SparseLayout.storage(for: t, pattern: pattern) != .dense, "\(name) is stored compactly")
            entries.append(TensorEntry(name: name, payload: .dense(t), sparsity: pattern))
        }
        let path = folder.url("ours.safetensors")
        try SafetensorsWriter.write(try Checkpoint(entries: entries), to: path)
        let result = try PythonRunner.run([Self.script, "decode", path, folder.url("numpy.safetensors")], in: folder)
        try #require(result.status == 0, "sparse_interop.py failed (exit \(result.status)):\n\(result.stderr)")
        #expect(result.stdout == "decoded \(samples.count) tensors\n")
        let numpy = try CheckpointReader.open(path: folder.url("numpy.safetensors"))
        for (name, t, _) in samples {
            #expect(try denseTensor(numpy, name) == t, "\(name)")
        }
    }

    @Test("a compressed-tensors sparse-bitmask file (no ModelPress record) reads as numpy's dense tensors")
    func compressedTensorsFile() throws {
        let folder = try TemporaryDirectory(prefix: "sparse-ct")
        let path = folder.url("ct.safetensors"), densePath = folder.url("dense.safetensors")
        let result = try PythonRunner.run([Self.script, "write-ct", path, densePath], in: folder)
        try #require(result.status == 0, "sparse_interop.py failed (exit \(result.status)):\n\(result.stderr)")
        #expect(result.stdout == "wrote 13 tensors\n")
        let raw = try SafetensorsReader.open(path: path)
        #expect(raw.metadata == [MetadataEntry(key: "format", value: .string("pt"))])
        #expect(try denseTensor(raw, "model.layers.0.self_attn.q_proj.shape").shape == Shape([2, 1]))
        let ours = try CheckpointReader.open(path: path), dense = try CheckpointReader.open(path: densePath)
        #expect(Set(ours.entries.map(\.name)) == Set(dense.entries.map(\.name)) && ours.count == 4)
        for entry in dense.entries {
            #expect(try denseTensor(ours, entry.name) == denseTensor(dense, entry.name), "\(entry.name)")
            #expect(ours[entry.name]?.sparsity == (entry.name == "model.norm.weight" ? nil : .unstructured), "\(entry.name)")
        }
        // Written again by us: our own record, the same parts (the [rank, 1] shape becomes [rank]).
        let again = folder.url("again.safetensors")
        try SafetensorsWriter.write(ours, to: again)
        let rewritten = try SafetensorsReader.open(path: again)
        #expect(rewritten.metadataValue(SparseLayout.metadataKey) != nil)
        #expect(try denseTensor(rewritten, "model.layers.0.mlp.up_proj.bitmask") == denseTensor(raw, "model.layers.0.mlp.up_proj.bitmask"))
        #expect(try denseTensor(rewritten, "model.layers.0.self_attn.q_proj.shape").shape == Shape([2]))
        let back = try CheckpointReader.open(path: again)
        for entry in dense.entries { #expect(try denseTensor(back, entry.name) == denseTensor(dense, entry.name), "\(entry.name)") }
    }
}
