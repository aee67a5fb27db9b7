import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

@Suite("compress → report → diff → decompress from the command line")
struct CompressWorkflowTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let pico = root.appendingPathComponent("TestModels/pico-llama-f32").path
    static let recipe = root.appendingPathComponent("Recipes/w4-mse-clip.recipe").path

    @Test("a 3-bit run regresses against a 4-bit run: diff --fail-above exits 2; report and decompress agree with compress")
    func workflow() throws {
        let dir = try TemporaryDirectory(prefix: "cli-workflow")
        let four = try CommandLineRunner.run(["compress", Self.pico, "--recipe", Self.recipe, "-o", dir.url("w4.safetensors"), "--report", dir.url("w4.json")])
        #expect(four.status == 0, "\(four)")
        #expect(four.standardOutput.contains("ratio:") && four.standardOutput.contains("worst 5 by relative error"))
        // Not a terminal: one plain progress line per compressed tensor on stderr.
        let progressLines = four.standardError.split(separator: "\n").filter { $0.hasPrefix("[") }
        #expect(progressLines.count == 16 && progressLines.last?.hasPrefix("[16/16] ") == true, "\(four.standardError)")
        let three = try CommandLineRunner.run(["compress", Self.pico, "--recipe", Self.recipe, "-o", dir.url("w3.safetensors"),
                                               "--report", dir.url("w3.json"), "--set", "bits=3", "--quiet"])
        #expect(three.status == 0 && three.standardOutput.isEmpty && three.standardError.isEmpty, "\(three)")

        let same = try CommandLineRunner.run(["diff", dir.url("w4.json"), dir.url("w4.json"), "--fail-above", "0"])
        #expect(same.status == 0, "\(same)")
        let worse = try CommandLineRunner.run(["diff", dir.url("w4.json"), dir.url("w3.json"), "--fail-above", "0.01", "--format", "csv"])
        #expect(worse.status == 2, "\(worse)")
        #expect(worse.standardError.contains("regressed by more than 0.01"))
        let better = try CommandLineRunner.run(["diff", dir.url("w3.json"), dir.url("w4.json"), "--fail-above", "0.01"])
        #expect(better.status == 0, "\(better)")

        // `report` recomputes the same per-tensor numbers from the two files.
        let report = try CommandLineRunner.run(["report", Self.pico, dir.url("w4.safetensors"), "-o", dir.url("again.json"), "--quiet"])
        #expect(report.status == 0, "\(report)")
        let diffAgain = try CommandLineRunner.run(["diff", dir.url("w4.json"), dir.url("again.json"), "--format", "json"])
        #expect(diffAgain.status == 0)
        let json = try JSONParser.parse(Array(diffAgain.standardOutput.utf8))
        let changes = try #require(json["tensors"]?.arrayElements)
        #expect(changes.count == 21)
        for change in changes {
            let a = try #require(change["relative_error"]?["a"]), b = try #require(change["relative_error"]?["b"])
            #expect(a == b, "\(change)")
            #expect(change["relative_error"]?["change"] == .number("0.0"), "\(change)")
        }

        // `decompress` gives dense F32 tensors with the original names, order and shapes.
        let out = dir.url("dense.safetensors")
        let decompressed = try CommandLineRunner.run(["decompress", dir.url("w4.safetensors"), "-o", out, "--quiet"])
        #expect(decompressed.status == 0, "\(decompressed)")
        let original = try CheckpointReader.open(path: Self.pico)
        let dense = try CheckpointReader.open(path: out)
        #expect(dense.entries.map(\.name) == original.entries.map(\.name))
        #expect(dense.entries.map(\.shape) == original.entries.map(\.shape))
        #expect(dense.entries.allSatisfy { $0.encodingName == "F32" })
    }

    @Test("a bad recipe exits 65 with compiler-style lines; an unknown output extension exits 64; nothing is written")
    func errors() throws {
        let dir = try TemporaryDirectory(prefix: "cli-compress-errors")
        let bad = try dir.write(Array("quantize.itn bits=4\n".utf8), to: "bad.recipe")
        let result = try CommandLineRunner.run(["compress", Self.pico, "--recipe", bad, "-o", dir.url("o.safetensors")])
        #expect(result.status == 65)
        #expect(result.standardError.contains("bad.recipe:1:1: error: unknown pass 'quantize.itn' (did you mean 'quantize.int'?)"))
        let bin = try CommandLineRunner.run(["compress", Self.pico, "--recipe", Self.recipe, "-o", dir.url("o.bin")])
        #expect(bin.status == 64)
        #expect(try dir.entries() == ["bad.recipe"])
        let check = try CommandLineRunner.run(["check", Self.pico, "--recipe", Self.recipe])
        #expect(check.status == 0 && check.standardOutput.contains("quantize.int selects 16 tensor(s)"))
        let passes = try CommandLineRunner.run(["passes"])
        #expect(passes.status == 0 && passes.standardOutput.contains("quantize.int") && passes.standardOutput.contains("quantize.fp8"))
    }

    @Test("compress to GGUF with quantize.int: decompress gives the same file as the safetensors route; convert, inspect and report read it")
    func ggufWorkflow() throws {
        let dir = try TemporaryDirectory(prefix: "cli-gguf-workflow")
        let recipe = Self.root.appendingPathComponent("Recipes/w4-group128.recipe").path
        for output in ["w4.safetensors", "w4.gguf"] {
            let result = try CommandLineRunner.run(["compress", Self.pico, "--recipe", recipe, "-o", dir.url(output), "--report", dir.url(output + ".json"), "--quiet"])
            #expect(result.status == 0, "\(result)")
            let dense = try CommandLineRunner.run(["decompress", dir.url(output), "-o", dir.url(output + ".dense.safetensors"), "--quiet"])
            #expect(dense.status == 0, "\(dense)")
        }
        // Same quantized tensors either way, so the dense reconstructions are the same file.
        #expect(try TemporaryDirectory.read(dir.url("w4.gguf.dense.safetensors")) == TemporaryDirectory.read(dir.url("w4.safetensors.dense.safetensors")))
        let fromGGUF = try CheckpointReader.open(path: dir.url("w4.gguf")), fromSafetensors = try CheckpointReader.open(path: dir.url("w4.safetensors"))
        #expect(fromGGUF.entries.map(\.name) == fromSafetensors.entries.map(\.name))
        for (a, b) in zip(fromGGUF.entries, fromSafetensors.entries) {
            guard case .quantized(let qa) = a.payload else { continue }
            guard case .quantized(let qb) = b.payload else { Issue.record("\(a.name) is not quantized in safetensors"); continue }
            #expect(qa == qb, "\(a.name)")
        }
        // The per-tensor errors agree; the reports differ only in sizes.
        let diff = try CommandLineRunner.run(["diff", dir.url("w4.safetensors.json"), dir.url("w4.gguf.json"), "--fail-above", "0"])
        #expect(diff.status == 0, "\(diff)")

        // inspect shows the encodings; report recomputes from the GGUF file.
        let inspect = try CommandLineRunner.run(["inspect", dir.url("w4.gguf")])
        #expect(inspect.status == 0 && inspect.standardOutput.contains("int4 asym group:128") && inspect.standardOutput.contains("int8 sym channel"), "\(inspect)")
        #expect(!inspect.standardOutput.contains("modelpress.quantization"), "the layout keys are consumed by the reader")
        let report = try CommandLineRunner.run(["report", Self.pico, dir.url("w4.gguf"), "-o", dir.url("again.json"), "--quiet"])
        #expect(report.status == 0, "\(report)")
        let again = try CommandLineRunner.run(["diff", dir.url("w4.gguf.json"), dir.url("again.json"), "--fail-above", "0"])
        #expect(again.status == 0, "\(again)")

        // convert moves quantized tensors between the formats exactly; requantizing them is refused.
        let converted = try CommandLineRunner.run(["convert", dir.url("w4.safetensors"), "-o", dir.url("converted.gguf"), "--quiet"])
        #expect(converted.status == 0, "\(converted)")
        #expect(try TemporaryDirectory.read(dir.url("converted.gguf")) == TemporaryDirectory.read(dir.url("w4.gguf")))
        let cast = try CommandLineRunner.run(["convert", dir.url("w4.gguf"), "-o", dir.url("cast.gguf"), "--dtype", "bf16", "--quiet"])
        #expect(cast.status == 0, "\(cast)")
        let castBack = try CheckpointReader.open(path: dir.url("cast.gguf"))
        for entry in fromGGUF.entries {
            guard case .quantized(let q) = entry.payload else { continue }
            guard case .quantized(let back)? = castBack[entry.name]?.payload else { Issue.record("\(entry.name) lost its quantization"); continue }
            #expect(back == q, "--dtype must not touch \(entry.name)")
        }
        #expect(castBack["model.norm.weight"]?.encodingName == "BF16")
        let requantize = try CommandLineRunner.run(["convert", dir.url("w4.gguf"), "-o", dir.url("q8.gguf"), "--type", "Q8_0"])
        #expect(requantize.status == 65, "\(requantize)")
        #expect(requantize.standardError.contains("'lm_head.weight' is already int8 sym channel"), "\(requantize)")
    }
}
