import Foundation
import TensorCore
import CheckpointFormats
import Recipes
import Passes

/// `merge.lora` of a rank-16 adapter into one [4096, 4096] weight (F32 and BF16), 2 threads, against
/// numpy doing the same float64 merge (`W + s·(B @ A)` with BLAS dgemm, rounded to float32) when a
/// Python with numpy is found (`MODELPRESS_PYTHON`, else `python3`).
struct LoRAMergeBenchmark {
    let n = 4096, rank = 16
    let directory: String

    func run() throws {
        var rng = SeededGenerator(seed: 16)
        let w = rng.gaussianFloats(count: n * n, standardDeviation: 0.02)
        let a = rng.gaussianFloats(count: rank * n, standardDeviation: 1 / Float(n).squareRoot())
        let b = rng.gaussianFloats(count: n * rank, standardDeviation: 0.002)
        let folder = directory + "/lora-bench-adapter"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "{\"peft_type\": \"LORA\", \"r\": \(rank), \"lora_alpha\": 32}".write(toFile: folder + "/adapter_config.json", atomically: true, encoding: .utf8)
        try SafetensorsWriter.write(try Checkpoint(entries: [
            TensorEntry(name: "base_model.model.layer.lora_A.weight", tensor: try DenseTensor(floats: a, shape: Shape([rank, n]))),
            TensorEntry(name: "base_model.model.layer.lora_B.weight", tensor: try DenseTensor(floats: b, shape: Shape([n, rank]))),
        ]), to: folder + "/adapter_model.safetensors")
        print("merge.lora benchmark: rank \(rank) into [\(n), \(n)], 2 threads, median of 3")
        for dtype in [DType.f32, .bf16] {
            let entry = TensorEntry(name: "layer.weight", tensor: try DenseTensor(floats: w, shape: Shape([n, n]), dtype: dtype))
            let recipe = try RecipeParser.parse(text: "merge.lora adapter=\(folder)\n", file: "bench")
            let step = try PassRegistry.builtIn.bind(recipe, manifest: CheckpointManifest(try Checkpoint(entries: [entry])))[0]
            let seconds = try medianSeconds(repetitions: 3) {
                var copy = entry
                try step.pass.apply(to: &copy, context: PassContext(threadCount: 2))
                blackHole(copy)
            }
            let bytes = Double(n * n * dtype.bitsPerElement / 8)
            print("  \(dtype.rawValue): \(fixed(seconds, 3)) s (\(fixed(bytes / seconds / 1e6, 0)) MB/s of base weights)")
        }
        let numpy = """
        import time, numpy as np
        n, r = \(n), \(rank)
        rng = np.random.default_rng(0)
        w = rng.standard_normal((n, n), dtype=np.float32) * 0.02
        a = rng.standard_normal((r, n), dtype=np.float32) / np.sqrt(n)
        b = rng.standard_normal((n, r), dtype=np.float32) * 0.002
        times = []
        for _ in range(3):
            t = time.perf_counter()
            out = (w.astype(np.float64) + 2.0 * (b.astype(np.float64) @ a.astype(np.float64))).astype(np.float32)
            times.append(time.perf_counter() - t)
        print(sorted(times)[1])
        """
        let python = ProcessInfo.processInfo.environment["MODELPRESS_PYTHON"] ?? "python3"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, "-c", numpy]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if process.terminationStatus == 0, let t = Double(text) { print("  numpy float64 reference (F32 base, BLAS dgemm): \(fixed(t, 3)) s") } else { print("  numpy reference: not available") }
        } catch {
            print("  numpy reference: not available")
        }
    }
}
