import Foundation
import Testing
import TensorCore
import CheckpointFormats
import ModelPress
import TestSupport

/// Shared tensors in GGUF checked with gguf-py, driven by `Tests/Interop/rps_interop.py`:
/// pico-llama-f32 compressed with `Recipes/share-embeddings.recipe` to `.gguf` is read by
/// `gguf.GGUFReader` (the `modelpress.rps` STRING, the `rps.12.slots` F32 tensor, no stored
/// embedding), and the script's own reimplementation of the map rebuilds `model.embed_tokens.weight`
/// equal, bit for bit as float32, to what `decompress` writes; every other tensor is unchanged.
@Suite("share.rps GGUF interop with gguf-py")
struct RPSInteropTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let script = repoRoot.appendingPathComponent("Tests/Interop/rps_interop.py").path
    static let pico = repoRoot.appendingPathComponent("TestModels/pico-llama-f32/model.safetensors").path
    static let recipe = repoRoot.appendingPathComponent("Recipes/share-embeddings.recipe").path

    @Test("gguf-py reads the shared GGUF and its own map rebuilds the embedding exactly as decompress writes it")
    func sharedEmbedding() throws {
        let dir = try TemporaryDirectory(prefix: "rps-interop")
        let shared = dir.url("shared.gguf"), dense = dir.url("dense.safetensors")
        _ = try CompressionPipeline(inputPath: Self.pico, recipePath: Self.recipe).compress(outputPath: shared)
        var conversion = try CheckpointConversion(inputPath: shared, outputPath: dense)
        _ = try conversion.run()

        // ModelPress's own view first: what the script is told to expect.
        let raw = try GGUFReader.open(path: shared)
        #expect(raw["rps.12.slots"] != nil && raw["model.embed_tokens.weight"] == nil)
        let back = try CheckpointReader.open(path: shared)
        guard case .shared(let t)? = back["model.embed_tokens.weight"]?.payload else {
            Issue.record("the embedding did not read back shared")
            return
        }
        #expect(t.arrayName == "rps.12" && t.map.slotCount == 16384 && t.sharedElementCount == 32768)
        #expect(try denseTensor(SafetensorsReader.open(path: dense), "model.embed_tokens.weight").floats() == t.expanded())

        let expected = try dir.write(text: #"{"array":"rps.12","shared":["model.embed_tokens.weight"]}"#, to: "expected.json")
        let result = try PythonRunner.run([Self.script, "verify", shared, dense, expected], in: dir)
        #expect(result.status == 0, "rps_interop.py exited \(result.status):\n\(result.stderr)\(result.stdout)")
        #expect(result.stdout == "verified 1 shared tensors (32768 elements), 20 dense tensors\n", "\(result.stdout)")
    }
}
