import Foundation
import Testing
import TensorCore
import CheckpointFormats
import Recipes
@testable import Passes

@Suite("PassRegistry: binding recipes to passes")
struct PassRegistryTests {
    static let picoPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("TestModels/pico-llama-f32/model.safetensors").path

    static func bind(_ text: String) throws(RecipeDiagnostics) -> [BoundStep] {
        let checkpoint = try! SafetensorsReader.open(path: picoPath)
        let recipe = try RecipeParser.parse(text: text, file: "r")
        return try PassRegistry.builtIn.bind(recipe, manifest: CheckpointManifest(checkpoint))
    }

    @Test("a step selects the linear weights by default, minus ignore patterns")
    func selection() throws {
        let steps = try Self.bind("quantize.int bits=4 granularity=group:128 ignore=\"*embed*, lm_head.weight\"")
        let checkpoint = try SafetensorsReader.open(path: Self.picoPath)
        let names = steps[0].selected.map { checkpoint.entries[$0].name }
        #expect(names.count == 14)
        #expect(names.allSatisfy { $0.contains(".layers.") && $0.hasSuffix("proj.weight") })
        let fp8 = try Self.bind("quantize.fp8 targets=\"re:.*mlp.*\" format=e5m2")
        #expect(fp8[0].selected.count == 6)
    }

    @Test("every problem is reported at once, at its position")
    func diagnostics() {
        do {
            _ = try Self.bind("""
            quantize.itn bits=4
            quantize.int bitz=4 granularity=group:100 targets="*q_proj*"
            quantize.int targets="nothing*"
            quantize.int targets="nothing*" optional=true
            quantize.fp8 format=e4m4
            output format=gguff zstd=23
            calibration
            output format=gguf
            """)
            Issue.record("no error")
        } catch {
            #expect(error.diagnostics.map(\.description) == [
                "r:1:1: error: unknown pass 'quantize.itn' (did you mean 'quantize.int'?)",
                "r:2:14: error: unknown option 'bitz' for quantize.int (did you mean 'bits'?)",
                "r:2:1: error: quantize.int: tensor 'model.layers.0.self_attn.q_proj.weight': row length 256 is not a multiple of the group size 100",
                "r:2:1: error: quantize.int: tensor 'model.layers.1.self_attn.q_proj.weight': row length 256 is not a multiple of the group size 100",
                "r:3:1: error: quantize.int selects no tensor (add optional=true if that is intended)",
                "r:5:21: error: quantize.fp8 format: 'e4m4' is not one of e4m3, e5m2 (did you mean 'e4m3'?)",
                "r:5:1: error: tensor 'model.layers.0.self_attn.q_proj.weight' is already compressed by the step at r:2:1",
                "r:5:1: error: tensor 'model.layers.1.self_attn.q_proj.weight' is already compressed by the step at r:2:1",
                "r:6:15: error: output format: 'gguff' is not one of safetensors, gguf (did you mean 'gguf'?)",
                "r:6:26: error: output zstd: 23 is out of range 1...22",
                "r:7:1: error: calibration needs stats=FILE",
                "r:8:1: error: the 'output' step is already given at r:6:1",
            ])
        }
    }

    @Test("malformed granularity and clipping values are reported at the value")
    func optionValues() {
        do {
            _ = try Self.bind("quantize.int granularity=group:x clipping=percentile:20")
            Issue.record("no error")
        } catch {
            #expect(error.diagnostics.map(\.description) == [
                "r:1:26: error: quantize.int granularity: 'group:x' is not tensor, channel or group:N",
                "r:1:43: error: quantize.int clipping: 'percentile:20' is not minmax, mse or percentile:P (50 < P ≤ 100)",
            ])
        }
    }

    @Test("apply quantizes the selected tensor in place; the error bound and zeros hold")
    func apply() throws {
        let steps = try Self.bind("quantize.int bits=4 symmetric=false granularity=group:64 clipping=mse")
        var checkpoint = try SafetensorsReader.open(path: Self.picoPath)
        let index = steps[0].selected[0]
        var entry = checkpoint.entries[index]
        guard case .dense(let original) = entry.payload else { Issue.record("not dense"); return }
        try steps[0].pass.apply(to: &entry, context: PassContext())
        guard case .quantized(let q) = entry.payload else { Issue.record("not quantized"); return }
        #expect(q.bits == 4 && q.granularity == .group(64) && !q.symmetric && entry.encodingName == "int4 asym group:64")
        let before = try original.floats(), after = q.dequantized()
        var num = 0.0, den = 0.0
        for (a, b) in zip(before, after) { num += Double(a - b) * Double(a - b); den += Double(a) * Double(a) }
        #expect(num / den < 0.02 && num / den > 0.001)     // 4-bit asym g64 with outliers: ~1e-2
        checkpoint.replacePayload(at: index, with: entry.payload)
        #expect(checkpoint.entries[index].encodingName == "int4 asym group:64")
    }

    @Test("describe lists every pass with its options, for `modelpress passes`")
    func describe() {
        let descriptions = PassRegistry.builtIn.describe()
        #expect(descriptions.map(\.name) == ["merge.lora", "prune.magnitude", "prune.wanda", "prune.obs", "allocate.bits", "quantize.int", "quantize.nf4", "quantize.fp8", "quantize.ggml", "share.rps", "cast"])
        #expect(descriptions[5].options.map(\.key) == ["bits", "symmetric", "granularity", "clipping", "method", "block", "damp", "act_order", "hessian"])
        #expect(descriptions[5].options[0].defaultValue == "8" && descriptions[5].options[0].kind == "integer 2...8 | auto")
        #expect(descriptions[4].options.map(\.key) == ["average", "min", "max", "granularity", "target", "types", "proxy", "theta"])
        #expect(descriptions[1].options.map(\.key) == ["sparsity", "pattern", "scope"])
        #expect(descriptions[0].options.map(\.key) == ["adapter", "weight"])
        #expect(descriptions[9].options.map(\.key) == ["ratio", "seed", "chunk", "weighting", "force"])
        #expect(descriptions[3].options.map(\.key) == ["sparsity", "pattern", "hessian", "block", "damp", "fisher_block", "fisher_damp"])
        #expect(descriptions.allSatisfy { !$0.summary.isEmpty })
    }
}
