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

    @Test("a bad recipe exits 65 with compiler-style lines; a GGUF output exits 64; nothing is written")
    func errors() throws {
        let dir = try TemporaryDirectory(prefix: "cli-compress-errors")
        let bad = try dir.write(Array("quantize.itn bits=4\n".utf8), to: "bad.recipe")
        let result = try CommandLineRunner.run(["compress", Self.pico, "--recipe", bad, "-o", dir.url("o.safetensors")])
        #expect(result.status == 65)
        #expect(result.standardError.contains("bad.recipe:1:1: error: unknown pass 'quantize.itn' (did you mean 'quantize.int'?)"))
        let gguf = try CommandLineRunner.run(["compress", Self.pico, "--recipe", Self.recipe, "-o", dir.url("o.gguf")])
        #expect(gguf.status == 64)
        #expect(try dir.entries() == ["bad.recipe"])
        let check = try CommandLineRunner.run(["check", Self.pico, "--recipe", Self.recipe])
        #expect(check.status == 0 && check.standardOutput.contains("quantize.int selects 16 tensor(s)"))
        let passes = try CommandLineRunner.run(["passes"])
        #expect(passes.status == 0 && passes.standardOutput.contains("quantize.int") && passes.standardOutput.contains("quantize.fp8"))
    }
}
