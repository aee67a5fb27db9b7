import Foundation
import Testing
import TestSupport

/// Scriptability: every command has `--json`, and what it prints is one JSON document.
@Suite("modelpress --json")
struct JSONOutputTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("every command prints valid JSON with --json, in the order a script would run them")
    func everyCommand() throws {
        let dir = try TemporaryDirectory(prefix: "cli-json")
        let model = Self.root.appendingPathComponent("TestModels/pico-llama-f32").path
        let recipe = Self.root.appendingPathComponent("Recipes/w4-mse-clip.recipe").path
        let runs: [(String, [String])] = [
            ("inspect", ["inspect", model, "--json"]),
            ("passes", ["passes", "--json"]),
            ("check", ["check", model, "--recipe", recipe, "--json"]),
            ("compress", ["compress", model, "--recipe", recipe, "-o", dir.url("w4.safetensors"), "--report", dir.url("w4.json"), "--json"]),
            ("compress 3 bits", ["compress", model, "--recipe", recipe, "-o", dir.url("w3.safetensors"), "--report", dir.url("w3.json"), "--set", "bits=3", "--json"]),
            ("convert", ["convert", model, "-o", dir.url("m.safetensors.zst"), "--json"]),
            ("decompress", ["decompress", dir.url("w4.safetensors"), "-o", dir.url("d.safetensors"), "--json"]),
            ("report", ["report", model, dir.url("w4.safetensors"), "-o", dir.url("r.md"), "--json"]),
            ("diff", ["diff", dir.url("w4.json"), dir.url("w3.json"), "--json"]),
            ("sweep", ["sweep", model, "--recipe", recipe, "--vary", "bits=3,4", "--out", dir.url("sweep"), "--json", "--keep-outputs", "false"]),
            ("diff sweeps", ["diff", dir.url("sweep"), dir.url("sweep"), "--json"]),
        ]
        for (name, arguments) in runs {
            let result = try CommandLineRunner.run(arguments)
            #expect(result.status == 0 && !result.crashed, "\(name): \(result)")
            #expect((try? JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8))) != nil, "\(name) printed: \(result.standardOutput.prefix(200))")
        }
    }
}
