import Foundation
import Testing
import TensorCore
import CheckpointFormats
import Passes
import TestSupport

/// A checkpoint whose weights have a width per column (made here by the RTN quantizer, as bit
/// allocation will) goes through `inspect`, `report`, `decompress` and `convert` like any other.
@Suite("mixed column widths from the command line")
struct MixedWidthWorkflowTests {
    static let pico = CompressWorkflowTests.pico

    /// pico-llama with every 2-D weight quantized at seeded widths 0, 2, 3, 4, 8 per column.
    static func mixedCheckpoint() throws -> Checkpoint {
        let original = try CheckpointReader.open(path: pico)
        var rng = SeededGenerator(seed: 41)
        let entries = try original.entries.map { entry -> TensorEntry in
            guard case .dense(let t) = entry.payload, t.shape.rank == 2 else { return entry }
            let widths = (0..<t.shape.columnCount).map { _ in ([0, 2, 3, 4, 8] as [UInt8])[Int(rng.next() % 5)] }
            let q = IntegerQuantizer(bits: 4, symmetric: rng.next() % 2 == 0, granularity: .channel)
                .quantize(try t.floats(), shape: t.shape, columnBits: widths)
            return TensorEntry(name: entry.name, payload: .quantized(q))
        }
        return try Checkpoint(entries: entries, metadata: original.metadata)
    }

    @Test("inspect, report, decompress and convert read it; report counts the stored bytes exactly; GGUF keeps it exactly")
    func workflow() throws {
        let dir = try TemporaryDirectory(prefix: "cli-mixed")
        let mixed = try Self.mixedCheckpoint()
        let path = dir.url("mixed.safetensors")
        try SafetensorsWriter.write(mixed, to: path)

        let inspect = try CommandLineRunner.run(["inspect", path])
        #expect(inspect.status == 0 && inspect.standardOutput.contains("int0-8 ") && inspect.standardOutput.contains(" channel mixed"), "\(inspect)")

        let report = try CommandLineRunner.run(["report", Self.pico, path, "-o", dir.url("report.json"), "--quiet"])
        #expect(report.status == 0, "\(report)")
        let json = try JSONParser.parse(try TemporaryDirectory.read(dir.url("report.json")))
        var reported = 0
        for record in try #require(json["tensors"]?.arrayElements) {
            guard let name = record["name"]?.stringValue, case .quantized(let q)? = mixed[name]?.payload else { continue }
            #expect(record["encoding"]?.stringValue == q.encodingName, "\(name)")
            #expect(record["bytes_out"]?.nonNegativeInt == CompressedTensorsLayout.storedByteCount(q), "\(name)")
            reported += 1
        }
        #expect(reported == mixed.entries.filter { if case .quantized = $0.payload { true } else { false } }.count && reported > 10)

        // decompress: the dequantized values, bit for bit.
        let dense = dir.url("dense.safetensors")
        let decompressed = try CommandLineRunner.run(["decompress", path, "-o", dense, "--quiet"])
        #expect(decompressed.status == 0, "\(decompressed)")
        let back = try CheckpointReader.open(path: dense)
        for entry in mixed.entries {
            guard case .quantized(let q) = entry.payload else { continue }
            guard case .dense(let t)? = back[entry.name]?.payload else { Issue.record("\(entry.name) missing"); continue }
            #expect(try t.floats().map(\.bitPattern) == q.dequantized().map(\.bitPattern), "\(entry.name)")
        }

        // convert to GGUF keeps every tensor exactly, and back to safetensors dequantizes it.
        let converted = try CommandLineRunner.run(["convert", path, "-o", dir.url("mixed.gguf"), "--quiet"])
        #expect(converted.status == 0, "\(converted)")
        let gguf = try CheckpointReader.open(path: dir.url("mixed.gguf"))
        for entry in mixed.entries {
            guard case .quantized(let q) = entry.payload else { continue }
            guard case .quantized(let read)? = gguf[entry.name]?.payload else { Issue.record("\(entry.name) not quantized in GGUF"); continue }
            #expect(read == q, "\(entry.name)")
        }
        let toDense = try CommandLineRunner.run(["convert", dir.url("mixed.gguf"), "-o", dir.url("from-gguf.safetensors"), "--quiet"])
        #expect(toDense.status == 0, "\(toDense)")
        #expect(try TemporaryDirectory.read(dir.url("from-gguf.safetensors")) == TemporaryDirectory.read(dense))
        let requantize = try CommandLineRunner.run(["convert", path, "-o", dir.url("q8.gguf"), "--type", "Q8_0"])
        #expect(requantize.status == 65 && requantize.standardError.contains("channel mixed"), "\(requantize)")
    }
}
