import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// Issue 11, part 2, as a regression test (the ~2 GB figures come from `modelpress-bench streaming`):
/// on a sharded checkpoint of 32 F32 tensors of 2 MiB (64 MiB), the peak RSS of `compress`,
/// `convert` and `decompress` above that of `inspect` on the same checkpoint stays under a quarter
/// of the checkpoint (16 MiB, 8 tensors), plus, for the zstd runs, the archive's fixed working set
/// (three chunk scratch buffers of 4 MiB of planes and 8 MiB of frames: 36 MiB). Holding every
/// result until the write, or keeping the input's mapped pages, costs about the whole checkpoint
/// (64 MiB) and fails this.
@Suite("Streaming: peak memory follows the largest tensor, not the checkpoint")
struct StreamingMemoryTests {
    static let tensorCount = 32, rows = 512, columns = 1024
    static let checkpointBytes = tensorCount * rows * columns * 4

    static func makeCheckpoint(in dir: TemporaryDirectory) throws -> String {
        let folder = try dir.makeFolder("model")
        var map: [String] = []
        for shard in 0..<2 {
            let name = "model-0000\(shard + 1)-of-00002.safetensors"
            let names = (0..<(tensorCount / 2)).map { "layers.\(shard * tensorCount / 2 + $0).weight" }
            let planned = names.map { SafetensorsWriter.PlannedTensor(name: $0, dtype: .f32, shape: Shape([rows, columns])) }
            try SafetensorsWriter.write(to: folder + "/" + name, metadata: [], tensors: planned) { position in
                var rng = SeededGenerator(seed: UInt64(shard * 100 + position))
                return try DenseTensor(floats: rng.gaussianFloats(count: rows * columns), shape: Shape([rows, columns]))
            }
            map += names.map { "\"\($0)\": \"\(name)\"" }
        }
        _ = try dir.write(text: "{\"metadata\": {}, \"weight_map\": {\(map.joined(separator: ", "))}}", to: "model/model.safetensors.index.json")
        return folder
    }

    @Test("compress (int4; prune then int4; lossless .zst), decompress and convert stay near one tensor")
    func peaks() throws {
        let dir = try TemporaryDirectory(prefix: "streaming-memory")
        let model = try Self.makeCheckpoint(in: dir)
        let w4 = try dir.write(text: "quantize.int bits=4 granularity=group:128\n", to: "w4.recipe")
        let pruned = try dir.write(text: "prune.magnitude sparsity=50%\nquantize.int bits=4 granularity=group:128\n", to: "p.recipe")
        let lossless = try dir.write(text: "output zstd=1\n", to: "lossless.recipe")
        let baseline = try PeakMemory.run(["inspect", model])
        let zstdScratch = 36 << 20
        let runs: [(String, [String], Int)] = [
            ("compress int4", ["compress", model, "--recipe", w4, "-o", dir.url("w4.safetensors")], 0),
            ("compress prune + int4", ["compress", model, "--recipe", pruned, "-o", dir.url("p.safetensors")], 0),
            ("compress lossless", ["compress", model, "--recipe", lossless, "-o", dir.url("l.safetensors.zst")], zstdScratch),
            ("decompress", ["decompress", dir.url("l.safetensors.zst"), "-o", dir.url("restored.safetensors")], zstdScratch),
            ("convert to F16", ["convert", model, "-o", dir.url("f16.safetensors"), "--dtype", "f16"], 0),
        ]
        for (label, arguments, fixed) in runs {
            let peak = try PeakMemory.run(arguments)
            let above = peak - baseline
            #expect(above < Self.checkpointBytes / 4 + fixed,
                    "\(label): peak \(peak >> 20) MiB, \(above >> 20) MiB above inspect's \(baseline >> 20) MiB, for a \(Self.checkpointBytes >> 20) MiB checkpoint")
        }
    }
}
