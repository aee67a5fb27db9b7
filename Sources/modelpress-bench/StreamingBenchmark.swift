import Foundation
import TensorCore
import CheckpointFormats
import TestSupport

/// Peak resident memory of `modelpress` on a checkpoint much larger than its largest tensor.
///
/// Makes a ~2 GB BF16 sharded checkpoint (4 shards; 30 weights of 64 MiB, the largest tensor, and
/// 6 of 4 MiB, plus small norms), then runs the release `modelpress` binary on it as a child process
/// and reads the child's peak RSS (`wait4`'s `ru_maxrss`, which counts touched pages of memory-mapped
/// files too) for: compress (int4 groups of 128), compress (prune 50% then int4: the pruned
/// tensors wait on disk between the steps), compress to a lossless `.zst`, decompress it, convert
/// to F16, convert to Q8_0 GGUF, and report (original against the int4 output).
/// Streaming means the peak stays near the largest tensor times a small constant, whatever the
/// checkpoint's size: the table gives the peak over the largest tensor in BF16 (64 MiB) and in
/// F32 (128 MiB, the form passes work on).
struct StreamingBenchmark {
    let directory: String
    let rows = 8192, columns = 4096      // the largest tensor: 32 Mi elements, 64 MiB in BF16
    let bigCount = 30, smallCount = 6, shardCount = 4

    func run() throws {
        let binary = try locateBinary()
        let folder = directory + "/modelpress-bench-streaming"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let model = folder + "/model"
        let (bytes, largest) = try makeCheckpoint(folder: model)
        print("streaming benchmark: sharded BF16 checkpoint of \(fixed(Double(bytes) / 1e9, 2)) GB in \(shardCount) shards, largest tensor \(largest >> 20) MiB (\(bytes / largest)x smaller than the checkpoint)")
        let w4 = folder + "/w4.recipe", pruned = folder + "/prune-w4.recipe", lossless = folder + "/lossless.recipe"
        try "quantize.int bits=4 granularity=group:128 symmetric=false\n".write(toFile: w4, atomically: true, encoding: .utf8)
        try "prune.magnitude sparsity=50%\nquantize.int bits=4 granularity=group:128 symmetric=false\n".write(toFile: pruned, atomically: true, encoding: .utf8)
        try "output zstd=3\n".write(toFile: lossless, atomically: true, encoding: .utf8)
        let runs: [(String, [String])] = [
            ("compress int4 g128", ["compress", model, "--recipe", w4, "-o", folder + "/w4.safetensors", "--report", folder + "/w4.json"]),
            ("compress prune 50% + int4", ["compress", model, "--recipe", pruned, "-o", folder + "/p-w4.safetensors"]),
            ("compress lossless .zst", ["compress", model, "--recipe", lossless, "-o", folder + "/lossless.safetensors.zst"]),
            ("decompress .zst", ["decompress", folder + "/lossless.safetensors.zst", "-o", folder + "/restored.safetensors"]),
            ("convert to F16", ["convert", model, "-o", folder + "/f16.safetensors", "--dtype", "f16"]),
            ("convert to Q8_0 GGUF", ["convert", model, "-o", folder + "/q8.gguf", "--type", "Q8_0"]),
            ("report (original vs int4)", ["report", model, folder + "/w4.safetensors", "-o", folder + "/again.json"]),
        ]
        print("  command                        time      peak RSS   peak / largest BF16   peak / largest as F32")
        for (label, arguments) in runs {
            let (peak, seconds) = try PeakMemory.measure(arguments, binary: binary)
            print("  " + label.padding(toLength: 30, withPad: " ", startingAt: 0)
                  + " " + (fixed(seconds, 1) + " s").leftPadded(7)
                  + " " + "\(peak >> 20) MiB".leftPadded(11)
                  + " " + (fixed(Double(peak) / Double(largest), 2) + "x").leftPadded(21)
                  + " " + (fixed(Double(peak) / Double(2 * largest), 2) + "x").leftPadded(23))
            if label.hasPrefix("decompress") { try? FileManager.default.removeItem(atPath: folder + "/restored.safetensors") }
        }
    }

    /// The release binary next to this benchmark's executable.
    private func locateBinary() throws -> String {
        let own = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let path = own.appendingPathComponent("modelpress").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw BenchmarkError("\(path) not found: build it first with `swift build -c release --product modelpress`")
        }
        return path
    }

    /// Writes the shards and the index; returns (checkpoint bytes, largest tensor bytes).
    private func makeCheckpoint(folder: String) throws -> (Int, Int) {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var tensors: [(name: String, shape: [Int])] = []
        for i in 0..<bigCount { tensors.append(("layers.\(i).mlp.weight", [rows, columns])) }
        for i in 0..<smallCount {
            tensors.append(("layers.\(i).attn.weight", [1024, 2048]))
            tensors.append(("layers.\(i).norm.weight", [columns]))
        }
        var weightMap: [(String, String)] = []
        var total = 0
        let perShard = (tensors.count + shardCount - 1) / shardCount
        for shard in 0..<shardCount {
            let slice = Array(tensors.dropFirst(shard * perShard).prefix(perShard))
            let name = String(format: "model-%05d-of-%05d.safetensors", shard + 1, shardCount)
            let planned = slice.map { SafetensorsWriter.PlannedTensor(name: $0.name, dtype: .bf16, shape: Shape($0.shape)) }
            try SafetensorsWriter.write(to: folder + "/" + name, metadata: [], tensors: planned) { position in
                try Self.bf16Tensor(Shape(slice[position].shape), seed: UInt64(shard * 1000 + position))
            }
            for t in slice {
                weightMap.append((t.name, name))
                total += 2 * Shape(t.shape).elementCount
            }
        }
        let map = weightMap.map { "\"\($0.0)\": \"\($0.1)\"" }.joined(separator: ", ")
        try "{\"metadata\": {\"total_size\": \(total)}, \"weight_map\": {\(map)}}".write(toFile: folder + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
        return (total, 2 * rows * columns)
    }

    /// Gaussian-like BF16 values (sum of two uniforms, scale 0.02) from a `SeededGenerator`.
    private static func bf16Tensor(_ shape: Shape, seed: UInt64) throws -> DenseTensor {
        var rng = SeededGenerator(seed: seed)
        let storage = ByteStorage(count: 2 * shape.elementCount) { raw in
            let out = raw.bindMemory(to: UInt16.self)
            for i in 0..<shape.elementCount {
                let z = rng.next()
                let u = Float(z & 0xFFFF) / 65536 + Float((z >> 16) & 0xFFFF) / 65536 - 1
                out[i] = UInt16(truncatingIfNeeded: (u * 0.04).bitPattern >> 16)
            }
        }
        return try DenseTensor(dtype: .bf16, shape: shape, storage: storage)
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
