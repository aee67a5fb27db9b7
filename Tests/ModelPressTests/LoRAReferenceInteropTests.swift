import Foundation
import Testing
import TensorCore
import CheckpointFormats
@testable import ModelPress
import TestSupport

/// merge.lora against `Tests/Interop/lora_merge_reference.py` (numpy, float64, PEFT's formulas) on
/// TestModels' PEFT adapters: plain with rank/alpha patterns and modules_to_save, rsLoRA in BF16,
/// DoRA, fan_in_fan_out with lora_bias on a Conv1D base, two adapters weighted, and a BF16 base.
@Suite("LoRA merge against the numpy reference")
struct LoRAReferenceInteropTests {
    static let root = CompressionPipelineTests.root
    static func model(_ path: String) -> String { root.appendingPathComponent("TestModels/" + path).path }

    @Test("every tensor within 1e-6 relative of the reference (F32), or the same BF16 value", arguments: [
        ("pico-llama-f32/model.safetensors", ["pico-llama-lora/plain"], [Double]()),
        ("pico-llama-f32/model.safetensors", ["pico-llama-lora/rslora"], []),
        ("pico-llama-f32/model.safetensors", ["pico-llama-lora/dora"], []),
        ("pico-gpt2-conv1d/model.safetensors", ["pico-gpt2-lora/fan-in-fan-out"], []),
        ("pico-llama-f32/model.safetensors", ["pico-llama-lora/plain", "pico-llama-lora/rslora"], [0.7, 0.3]),
        ("pico-llama-bf16/model.safetensors", ["pico-llama-lora/plain", "pico-llama-lora/dora"], [1, 0.5]),
    ])
    func matchesReference(base: String, adapters: [String], weights: [Double]) throws {
        let dir = try TemporaryDirectory(prefix: "lora-ref")
        let ours = dir.url("ours.safetensors"), reference = dir.url("reference.safetensors")
        let folders = adapters.map(Self.model)
        var arguments = ["merge-lora", Self.model(base)] + folders + ["-o", ours, "--quiet"]
        for w in weights { arguments += ["--weight", String(w)] }
        let run = try CommandLineRunner.run(arguments)
        try #require(run.status == 0, "\(run)")
        let specs = folders.enumerated().map { weights.isEmpty ? $0.element : "\($0.element):\(weights[$0.offset])" }
        let script = Self.root.appendingPathComponent("Tests/Interop/lora_merge_reference.py").path
        let python = try PythonRunner.run([script, Self.model(base), reference] + specs)
        try #require(python.status == 0, "\(python.stderr)")
        let a = try CheckpointReader.open(path: ours), b = try CheckpointReader.open(path: reference)
        #expect(a.entries.map(\.name) == b.entries.map(\.name))
        var changed = 0
        for (x, y) in zip(a.entries, b.entries) {
            let p = try denseTensor(a, x.name), q = try denseTensor(b, y.name)
            #expect(p.dtype == q.dtype && p.shape == q.shape, "\(x.name)")
            let u = try p.floats(), v = try q.floats()
            if p.dtype == .f32 {
                let worst = zip(u, v).map { abs(Double($0) - Double($1)) / max(abs(Double($1)), 1e-3) }.max() ?? 0
                #expect(worst <= 1e-6, "\(x.name): \(worst)")
            } else {
                #expect(u == v, "\(x.name): \(zip(u, v).filter { $0 != $1 }.count) values differ")
            }
            if u != (try denseTensor(try CheckpointReader.open(path: Self.model(base)), x.name).floats()) { changed += 1 }
        }
        #expect(changed > 0)
    }
}
