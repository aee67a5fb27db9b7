import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// A pruned checkpoint stored compactly (`SparseLayout`) goes through `report`, `decompress` (plain
/// and `.zst`) and `convert` like any other: reports count the compact bytes, decompressed files are
/// ordinary dense tensors with the original names and order, GGUF stores them dense.
@Suite("compact sparse tensors from the command line")
struct SparseWorkflowTests {
    /// pico-llama with its 2-D weights pruned by magnitude: attention 2:4, the rest 70 % unstructured.
    static func prunedCheckpoint() throws -> Checkpoint {
        let original = try CheckpointReader.open(path: CompressWorkflowTests.pico)
        let entries = try original.entries.map { entry -> TensorEntry in
            guard case .dense(let t) = entry.payload, t.shape.rank == 2 else { return entry }
            var values = try t.floats()
            let pattern: SparsityPattern = entry.name.contains("self_attn") ? .nOfM(kept: 2, group: 4) : .unstructured
            if case .nOfM = pattern {
                for start in stride(from: 0, to: values.count, by: 4) {
                    for i in (start..<(start + 4)).sorted(by: { abs(values[$0]) < abs(values[$1]) }).prefix(2) { values[i] = 0 }
                }
            } else {
                let threshold = values.map(abs).sorted()[values.count * 7 / 10]
                values = values.map { abs($0) < threshold ? 0 : $0 }
            }
            return TensorEntry(name: entry.name, payload: .dense(try DenseTensor(floats: values, shape: t.shape, dtype: t.dtype)), sparsity: pattern)
        }
        return try Checkpoint(entries: entries, metadata: original.metadata)
    }

    @Test("report counts the compact bytes; decompress (plain and .zst) writes the dense tensors unmarked; GGUF stays dense")
    func workflow() throws {
        let dir = try TemporaryDirectory(prefix: "cli-sparse")
        let pruned = try Self.prunedCheckpoint()
        let path = dir.url("pruned.safetensors")
        try SafetensorsWriter.write(pruned, to: path)
        let raw = try SafetensorsReader.open(path: path)
        #expect(raw.metadataValue(SparseLayout.metadataKey) != nil && raw.count > pruned.count)

        let report = try CommandLineRunner.run(["report", CompressWorkflowTests.pico, path, "-o", dir.url("report.json"), "--quiet"])
        #expect(report.status == 0, "\(report)")
        let json = try JSONParser.parse(try TemporaryDirectory.read(dir.url("report.json")))
        var compact = 0
        for record in try #require(json["tensors"]?.arrayElements) {
            guard let name = record["name"]?.stringValue, let entry = pruned[name], case .dense(let t) = entry.payload else { continue }
            let stored = entry.byteCount(in: .safetensors)
            #expect(record["bytes_out"]?.nonNegativeInt == stored, "\(name)")
            if entry.sparsity != nil { #expect(stored < t.byteCount, "\(name)"); compact += 1 }
        }
        #expect(compact == pruned.entries.filter { $0.sparsity != nil }.count && compact > 10)
        let inputBytes = try CheckpointReader.open(path: CompressWorkflowTests.pico).entries.reduce(0) { $0 + $1.byteCount }
        #expect(try #require(json["totals"]?["bytes_out"]?.nonNegativeInt) < inputBytes * 6 / 10)

        // decompress: plain dense tensors, the original names and order, no sparse record.
        for (input, output) in [(path, "dense.safetensors"), (dir.url("pruned.safetensors.zst"), "dense-from-zst.safetensors")] {
            if input.hasSuffix(".zst") {
                try ZstdCheckpoint.write(to: input, threadCount: 2) { try SafetensorsWriter.write(pruned, to: $0) }
            }
            let result = try CommandLineRunner.run(["decompress", input, "-o", dir.url(output), "--quiet"])
            #expect(result.status == 0, "\(result)")
            let dense = try SafetensorsReader.open(path: dir.url(output))
            #expect(dense.entries.map(\.name) == pruned.entries.map(\.name), "\(output)")
            #expect(dense.metadata.allSatisfy { $0.key != SparseLayout.metadataKey })
            for entry in pruned.entries {
                #expect(try denseTensor(dense, entry.name) == denseTensor(pruned, entry.name), "\(output): \(entry.name)")
            }
            #expect(try CheckpointReader.open(path: dir.url(output)).entries.allSatisfy { $0.sparsity == nil })
        }

        let converted = try CommandLineRunner.run(["convert", path, "-o", dir.url("pruned.gguf"), "--quiet"])
        #expect(converted.status == 0, "\(converted)")
        let gguf = try CheckpointReader.open(path: dir.url("pruned.gguf"))
        #expect(gguf.entries.map(\.name) == pruned.entries.map(\.name))
        #expect(gguf.metadata.allSatisfy { !$0.key.hasPrefix(SparseLayout.metadataKey) })

        // A broken part exits 65 with the file and the tensor named.
        let broken = dir.url("broken.safetensors")
        var bytes = try TemporaryDirectory.read(path)
        let name = try #require(pruned.entries.first { $0.sparsity == .unstructured }?.name)
        let header = try SafetensorsBytes.parse(bytes, file: path)
        let part = try #require(header.tensors.first { $0.name == SparseLayout.partName(name, .rowOffsets) })
        bytes[header.dataOffset + part.dataRange.lowerBound] = 1   // row 0 no longer starts at 0
        try dir.write(bytes, to: "broken.safetensors")
        let inspect = try CommandLineRunner.run(["inspect", broken])
        #expect(inspect.status == 65 && inspect.standardError.contains("\(broken): sparse tensor '\(name)'"), "\(inspect)")
    }
}
