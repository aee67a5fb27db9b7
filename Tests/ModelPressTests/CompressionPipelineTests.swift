import Foundation
import Testing
import TensorCore
import CheckpointFormats
import Recipes
import Reports
import ModelPress
import TestSupport

@Suite("Compression pipeline")
struct CompressionPipelineTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let pico = root.appendingPathComponent("TestModels/pico-llama-f32").path
    static let recipes = (try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("Recipes").path))?
        .filter { $0.hasSuffix(".recipe") }.sorted() ?? []

    @Test("Recipes/ holds the documented recipes")
    func recipeList() {
        #expect(Self.recipes == ["baq-avg3.recipe", "baq-avg4.recipe", "fp8-e4m3.recipe", "gguf-baq-mixed.recipe", "gguf-q4k.recipe", "gptq-int4.recipe", "lora-merge-then-w4.recipe", "lora-merge.recipe", "lossless.recipe", "nf4.recipe", "prune-2of4-sparsegpt.recipe", "prune50-magnitude.recipe", "prune50-then-w4.recipe", "share-embeddings.recipe", "w4-group128.recipe", "w4-mse-clip.recipe", "w8-per-channel.recipe"])
    }

    @Test("every recipe runs on the test model; the report matches the written file", arguments: recipes)
    func runRecipe(_ name: String) throws {
        let dir = try TemporaryDirectory(prefix: "pipeline")
        let output = dir.url(name.hasPrefix("gguf-") ? "out.gguf" : name.hasPrefix("lossless") ? "out.safetensors.zst" : "out.safetensors")
        let recipe = Self.root.appendingPathComponent("Recipes/\(name)").path
        let report = try CompressionPipeline(inputPath: Self.pico, recipePath: recipe).compress(outputPath: output)
        let original = try CheckpointReader.open(path: Self.pico)
        let written = try CheckpointReader.open(path: output)
        #expect(written.entries.map(\.name) == original.entries.map(\.name))
        #expect(report.tensors.map(\.name) == original.entries.map(\.name))
        var quantizedCount = 0
        for ((before, after), record) in zip(zip(original.entries, written.entries), report.tensors) {
            guard case .dense(let input) = before.payload else { continue }
            let x = try input.floats()
            let y: [Float]
            switch after.payload {
            case .quantized(let q): y = q.dequantized(); quantizedCount += 1
            case .dense(let t): y = try t.floats()
            case .ggml(let t): y = try GGMLQuantization.dequantize(t, name: after.name); quantizedCount += 1
            case .shared(let t): y = t.expanded()
            }
            // Independent relative error in Double.
            var num = 0.0, den = 0.0
            for (a, b) in zip(x, y) { num += Double(a - b) * Double(a - b); den += Double(a) * Double(a) }
            let expected = (num / den).squareRoot()
            #expect(abs(record.relativeError - expected) <= 1e-9 + 1e-6 * expected, "\(name) \(before.name)")
            #expect(record.encoding == after.encodingName)
        }
        #expect(quantizedCount == Self.quantizedCount(name), "\(name): 14 linear weights (+ embeddings + lm_head)")
        if name == "lora-merge.recipe" {
            // The adapter updates q_proj, v_proj and down_proj of both layers and replaces lm_head.
            let changed = report.tensors.filter { $0.relativeError > 0 }.map(\.name)
            #expect(changed.count == 7 && changed.allSatisfy { $0.contains("q_proj") || $0.contains("v_proj") || $0.contains("down_proj") || $0 == "lm_head.weight" }, "\(changed)")
            return
        }
        if name == "share-embeddings.recipe" {
            // Only the embedding changes: 32768 weights in 16384 shared slots, about half its energy lost.
            let changed = report.tensors.filter { $0.relativeError > 0 }
            #expect(changed.map(\.name) == ["model.embed_tokens.weight"] && changed[0].encoding == "rps 2.00x")
            #expect(changed[0].relativeError > 0.68 && changed[0].relativeError < 0.73, "\(changed[0].relativeError) = sqrt(~0.5)")
            #expect(changed[0].outputByteCount == 16384 * 4 + 4)
            return
        }
        if Self.prunesOnly(name) {
            // Exactly half of every linear weight is zero; embeddings and lm_head are untouched.
            #expect(report.tensors.filter { $0.sparsity == 0.5 }.count == 14 && report.tensors.filter { $0.sparsity == 0 }.count == 7)
            // Stored compactly (F32 at 50%: 4.25 of 8 bytes per pair of weights), read back marked.
            #expect(report.totals.ratio > 1.7 && report.totals.ratio < 1.8, "\(report.totals.ratio)")
            #expect(written.entries.filter { $0.sparsity != nil }.count == 14)
            return
        }
        if name.hasPrefix("lossless") {
            #expect(report.tensors.allSatisfy { $0.relativeError == 0 })
            let fileSize = try FileManager.default.attributesOfItem(atPath: output)[.size] as! Int
            #expect(Double(report.totals.outputByteCount) / Double(fileSize) > 1.15, "zstd byte planes on F32")
            return
        }
        let fileSize = try FileManager.default.attributesOfItem(atPath: output)[.size] as! Int
        #expect(report.totals.outputByteCount < fileSize && fileSize < report.totals.outputByteCount + 16_384, "headers and padding are the only overhead")
        #expect(report.totals.ratio > 3.5)
    }

    /// Recipes that prune and leave the weights dense.
    static func prunesOnly(_ name: String) -> Bool { name.hasPrefix("prune") && !name.contains("-then-") }

    /// Tensors a recipe quantizes on pico-llama: nf4 leaves embeddings and lm_head alone, as
    /// bitsandbytes does; the other quantizing recipes do all 16 weight matrices.
    static func quantizedCount(_ name: String) -> Int {
        name == "nf4.recipe" ? 14 : name == "lossless.recipe" || keepsDense(name) ? 0 : 16
    }

    /// Recipes whose output is dense (pruning or merging only).
    static func keepsDense(_ name: String) -> Bool { prunesOnly(name) || name == "lora-merge.recipe" || name == "share-embeddings.recipe" }

    @Test("integer and FP8 recipes write GGUF too: the same quantized tensors and errors as safetensors; the report matches the file",
          arguments: recipes.filter { !$0.hasPrefix("gguf-") && !$0.hasPrefix("lossless") && !keepsDense($0) })
    func recipeToGGUF(_ name: String) throws {
        let dir = try TemporaryDirectory(prefix: "pipeline-gguf")
        let recipe = Self.root.appendingPathComponent("Recipes/\(name)").path
        let gguf = dir.url("out.gguf"), safetensors = dir.url("out.safetensors")
        let report = try CompressionPipeline(inputPath: Self.pico, recipePath: recipe).compress(outputPath: gguf)
        let reference = try CompressionPipeline(inputPath: Self.pico, recipePath: recipe).compress(outputPath: safetensors)
        let a = try CheckpointReader.open(path: gguf), b = try CheckpointReader.open(path: safetensors)
        #expect(a.entries.map(\.name) == b.entries.map(\.name))
        var quantizedCount = 0
        for (x, y) in zip(a.entries, b.entries) {
            switch (x.payload, y.payload) {
            case (.quantized(let p), .quantized(let q)): #expect(p == q, "\(name) \(x.name)"); quantizedCount += 1
            case (.dense(let p), .dense(let q)): #expect(p == q, "\(name) \(x.name)")
            default: Issue.record("\(name) \(x.name): \(x.encodingName) in GGUF, \(y.encodingName) in safetensors")
            }
        }
        #expect(quantizedCount == Self.quantizedCount(name))
        #expect(report.tensors.map(\.relativeError) == reference.tensors.map(\.relativeError))
        #expect(report.tensors.map(\.encoding) == reference.tensors.map(\.encoding))
        let fileSize = try FileManager.default.attributesOfItem(atPath: gguf)[.size] as! Int
        // Every part is padded to 32 bytes and the layout keys take a few hundred bytes per tensor.
        #expect(report.totals.outputByteCount < fileSize && fileSize < report.totals.outputByteCount + 32_768, "\(fileSize) vs \(report.totals.outputByteCount)")
        #expect(report.totals.ratio > 3.5)
    }

    @Test("--set overrides reach the passes: bits=3 gives 3-bit codes and a larger error than 4")
    func overrides() throws {
        let dir = try TemporaryDirectory(prefix: "pipeline-set")
        let recipe = Self.root.appendingPathComponent("Recipes/w4-mse-clip.recipe").path
        let four = try CompressionPipeline(inputPath: Self.pico, recipePath: recipe).compress(outputPath: dir.url("a.safetensors"))
        let three = try CompressionPipeline(inputPath: Self.pico, recipePath: recipe, overrides: [("bits", "3")]).compress(outputPath: dir.url("b.safetensors"))
        let q = three.tensors.first { $0.name == "model.layers.0.mlp.up_proj.weight" }!
        #expect(q.encoding == "int3 sym channel")
        #expect(q.relativeError > four.tensors.first { $0.name == q.name }!.relativeError * 1.5)
    }

    @Test("recipe problems are all reported before anything is written")
    func badRecipe() throws {
        let dir = try TemporaryDirectory(prefix: "pipeline-bad")
        let recipe = try dir.write(Array("quantize.int bits=9 granularity=group:100\nquantize.int targets=\"*q_proj*\"\n".utf8), to: "bad.recipe")
        do {
            _ = try CompressionPipeline(inputPath: Self.pico, recipePath: recipe).compress(outputPath: dir.url("out.safetensors"))
            Issue.record("no error")
        } catch let error as RecipeDiagnostics {
            let lines = error.diagnostics.map(\.description)
            #expect(lines.first == "\(recipe):1:19: error: quantize.int bits: 9 is out of range 2...8")
            #expect(lines.contains { $0.hasSuffix("row length 256 is not a multiple of the group size 100") })
            #expect(lines.contains { $0.contains(":2:1: error: tensor 'model.layers.0.self_attn.q_proj.weight' is already compressed by the step at \(recipe):1:1") })
        }
        #expect(!FileManager.default.fileExists(atPath: dir.url("out.safetensors")))
    }

    @Test("quantize.ggml gives the same tensor bytes as convert --type (llama-quantize --pure); cast rounds to BF16")
    func ggmlAndCast() throws {
        let dir = try TemporaryDirectory(prefix: "pipeline-ggml")
        let recipe = try dir.write(Array("quantize.ggml type=Q4_K\ncast dtype=bf16 targets=\"*norm*\"\n".utf8), to: "r.recipe")
        _ = try CompressionPipeline(inputPath: Self.pico, recipePath: recipe).compress(outputPath: dir.url("a.gguf"))
        var conversion = try CheckpointConversion(inputPath: Self.pico, outputPath: dir.url("b.gguf"),
                                                  options: .init(quantization: .pure(.q4_K), threadCount: 2))
        try conversion.run()
        let a = try GGUFReader.open(path: dir.url("a.gguf")), b = try GGUFReader.open(path: dir.url("b.gguf"))
        var compared = 0
        for entry in b.entries {
            guard case .ggml(let expected) = entry.payload else { continue }
            guard case .ggml(let actual)? = a[entry.name]?.payload else { Issue.record("\(entry.name) not quantized"); continue }
            #expect(actual.storage == expected.storage, "\(entry.name)")
            compared += 1
        }
        #expect(compared == 16)
        let original = try CheckpointReader.open(path: Self.pico)
        guard case .dense(let norm)? = a["model.norm.weight"]?.payload, case .dense(let source)? = original["model.norm.weight"]?.payload else {
            Issue.record("norm missing"); return
        }
        #expect(norm.dtype == .bf16)
        #expect(try norm.floats() == (try source.floats()).map { HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits($0)) })
    }
}
