import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// Shared tensors (`share.rps`, `Recipes/share-embeddings.recipe`) from the command line, stored as
/// safetensors, GGUF and `.safetensors.zst`: `inspect` shows the embedding as `rps 2.00x` (never the
/// slot array or the record), `decompress` writes it as a dense F32 tensor equal to the expansion,
/// `report` compares it with the original, and a corrupted record exits 65 with nothing written.
@Suite("shared tensors from the command line")
struct SharedWorkflowTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let pico = root.appendingPathComponent("TestModels/pico-llama-f32").path
    static let recipe = root.appendingPathComponent("Recipes/share-embeddings.recipe").path
    static let embedding = "model.embed_tokens.weight"

    static func row(_ output: String, _ name: String) -> [String]? {
        output.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }.first { $0.first == name }
    }

    @Test("compress to safetensors, GGUF and .zst; inspect, report and decompress each", arguments: ["safetensors", "gguf", "safetensors.zst"])
    func workflow(_ ext: String) throws {
        let dir = try TemporaryDirectory(prefix: "cli-rps")
        let shared = dir.url("shared.\(ext)")
        let compress = try CommandLineRunner.run(["compress", Self.pico, "--recipe", Self.recipe, "-o", shared, "--quiet"])
        #expect(compress.status == 0, "\(compress)")

        // inspect: the embedding as `rps 2.00x` with its share of the stored bytes (16384 slots / 2 + the scale).
        let inspect = try CommandLineRunner.run(["inspect", shared])
        #expect(inspect.status == 0, "\(inspect)")
        #expect(Self.row(inspect.standardOutput, Self.embedding) == [Self.embedding, "rps", "2.00x", "[128,", "256]", "32768", "65540"], "\(inspect)")
        #expect(!inspect.standardOutput.contains("rps.12.slots") && !inspect.standardOutput.contains(SharedTensorLayout.metadataKey), "\(inspect)")
        #expect(inspect.standardOutput.contains("21 tensors, 853248 parameters"), "\(inspect)")
        let inspectJSON = try CommandLineRunner.run(["inspect", shared, "--json"])
        let tensors = try #require(try JSONParser.parse(Array(inspectJSON.standardOutput.utf8))["tensors"]?.arrayElements)
        let record = try #require(tensors.first { $0["name"]?.stringValue == Self.embedding })
        #expect(record["dtype"] == .string("rps 2.00x") && record["bytes"]?.nonNegativeInt == 65540)

        // report: the original against the shared file.
        let report = try CommandLineRunner.run(["report", Self.pico, shared, "-o", dir.url("report.json"), "--quiet"])
        #expect(report.status == 0, "\(report)")
        let json = try JSONParser.parse(try TemporaryDirectory.read(dir.url("report.json")))
        let rows = try #require(json["tensors"]?.arrayElements)
        #expect(rows.count == 21)
        let row = try #require(rows.first { $0["name"]?.stringValue == Self.embedding })
        #expect(row["encoding"] == .string("rps 2.00x") && row["bytes_out"]?.nonNegativeInt == 65540 && row["bytes_in"]?.nonNegativeInt == 131072, "\(row)")
        let error = try #require(row["relative_error"].flatMap { if case .number(let s) = $0 { Double(s) } else { nil } })
        #expect(error > 0.6 && error < 0.8, "\(error)")   // about √(1 − 1/2) of the norm is lost at 2x
        for other in rows where other["name"]?.stringValue != Self.embedding {
            #expect(other["relative_error"] == .number("0.0") && other["encoding"] == .string("F32"), "\(other)")
        }

        // decompress: a dense F32 embedding equal to the expansion, everything else as in the original.
        let dense = dir.url("dense.safetensors")
        let decompress = try CommandLineRunner.run(["decompress", shared, "-o", dense, "--quiet"])
        #expect(decompress.status == 0, "\(decompress)")
        let read = try CheckpointReader.open(path: shared)
        guard case .shared(let view)? = read[Self.embedding]?.payload else {
            Issue.record("the embedding did not read back shared")
            return
        }
        let out = try SafetensorsReader.open(path: dense)
        let original = try CheckpointReader.open(path: Self.pico)
        #expect(out.entries.map(\.name) == original.entries.map(\.name))
        #expect(out.metadata.allSatisfy { $0.key != SharedTensorLayout.metadataKey })
        let embedding = try denseTensor(out, Self.embedding)
        #expect(embedding.dtype == .f32 && embedding.shape == Shape([128, 256]))
        #expect(try embedding.floats() == view.expanded())
        for entry in original.entries where entry.name != Self.embedding {
            #expect(try denseTensor(out, entry.name) == denseTensor(original, entry.name), "\(entry.name)")
        }
    }

    @Test("a corrupted record exits 65 naming the file and the array, and nothing is written", arguments: ["safetensors", "gguf"])
    func corrupted(_ ext: String) throws {
        let dir = try TemporaryDirectory(prefix: "cli-rps-bad")
        let good = dir.url("shared.\(ext)")
        let compress = try CommandLineRunner.run(["compress", Self.pico, "--recipe", Self.recipe, "-o", good, "--quiet"])
        #expect(compress.status == 0, "\(compress)")
        // The stored form with the seed replaced by a number.
        let raw = ext == "gguf" ? try GGUFReader.open(path: good) : try SafetensorsReader.open(path: good)
        let text = try #require(raw.metadataValue(SharedTensorLayout.metadataKey)?.description)
        #expect(text.contains(#""seed":"0""#))
        let broken = text.replacingOccurrences(of: #""seed":"0""#, with: #""seed":0"#)
        let metadata = raw.metadata.map { $0.key == SharedTensorLayout.metadataKey ? MetadataEntry(key: $0.key, value: .string(broken)) : $0 }
        let bad = dir.url("broken.\(ext)")
        if ext == "gguf" {
            try GGUFWriter.write(try Checkpoint(entries: raw.entries, metadata: metadata), to: bad)
        } else {
            try SafetensorsWriter.write(try Checkpoint(entries: raw.entries, metadata: metadata), to: bad)
        }
        let message = "\(bad): shared tensor record 'rps.12': seed must be a decimal string of an unsigned 64-bit integer"
        for arguments in [["inspect", bad], ["decompress", bad, "-o", dir.url("out.safetensors")], ["report", Self.pico, bad, "-o", dir.url("out.json")],
                          ["convert", bad, "-o", dir.url("out.gguf")]] {
            let result = try CommandLineRunner.run(arguments)
            #expect(result.status == 65 && !result.crashed && result.standardError.contains(message), "\(arguments[0]): \(result)")
        }
        #expect(try dir.entries() == ["broken.\(ext)", "shared.\(ext)"])
    }
}
