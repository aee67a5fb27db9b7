import Foundation
import TensorCore
import CheckpointFormats
import Recipes
import Passes
import Reports

/// BAQ on one [n, n] layer with an [n, n] Hessian (default n = 4096): `allocate.bits average=4`
/// per input column, then `quantize.int bits=auto method=gptq` with the planned widths, against the
/// sgemm time of the same floating-point work, and against uniform GPTQ int4 at the same storage.
///
/// FLOPs counted: the plan's one Cholesky factorization for the OBS sensitivities 1/U_jj² (n³/3),
/// and GPTQ's (2n³/3: a Cholesky factorization and a triangular inverse) plus its column updates (2n³). Round to nearest at the reference width and the
/// allocation itself are O(n²) and O(n log n) and counted as free.
struct BAQBenchmark {
    let n: Int
    let directory: String

    func run() throws {
        var rng = SeededGenerator(seed: 4096)
        let w = rng.gaussianFloats(count: n * n, standardDeviation: 0.02)
        // Correlated inputs with unequal column scales (the shape BAQ exploits): X = Z·diag(s), H = XᵀX/n + 0.1·I.
        var x = rng.gaussianFloats(count: n * n)
        let s = (0..<n).map { _ in Float(exp(0.8 * rng.nextGaussian())) }
        for t in 0..<n { for j in 0..<n { x[t * n + j] *= s[j] } }
        var h = [Float](repeating: 0, count: n * n)
        let sgemm = medianSeconds(repetitions: 3) {
            BLAS.gemm(.transposed, .none, m: n, n: n, k: n, alpha: 1 / Float(n), a: x, lda: n, b: x, ldb: n, c: &h, ldc: n)
        }
        for j in 0..<n { h[j * n + j] += 0.1 }
        let sgemmRate = 2 * pow(Double(n), 3) / sgemm
        let name = "layer.weight", shape = Shape([n, n])
        let statistics = directory + "/baq-bench-calibration.safetensors"
        try SafetensorsWriter.write(try Checkpoint(entries: [TensorEntry(name: name + ".hessian", tensor: try DenseTensor(floats: h, shape: shape))]), to: statistics)
        defer { try? FileManager.default.removeItem(atPath: statistics) }
        let checkpoint = try Checkpoint(entries: [TensorEntry(name: name, tensor: try DenseTensor(floats: w, shape: shape))])
        let recipe = try RecipeParser.parse(text: "allocate.bits average=4\nquantize.int bits=auto symmetric=false method=gptq\n")
        let bound = try PassRegistry.builtIn.bindRecipe(recipe, manifest: CheckpointManifest(checkpoint))
        var context = PassContext(threadCount: 2, calibration: try CalibrationStatistics.load(path: statistics))
        print("BAQ benchmark: [\(n), \(n)] weight, [\(n), \(n)] Hessian, average 4 bits per weight per column, GPTQ, 2 threads, median of 3")
        print("  sgemm [\(n), \(n)] x [\(n), \(n)]: \(fixed(sgemm, 3)) s, \(fixed(sgemmRate / 1e9, 1)) GFLOP/s")
        let planSeconds = try medianSeconds(repetitions: 3) {
            try bound.steps[0].pass.plan(checkpoint, selected: [0], consumers: bound.steps[0].consumers, context: &context)
        }
        var entry = checkpoint.entries[0]
        let applySeconds = try medianSeconds(repetitions: 3) {
            var copy = checkpoint.entries[0]
            try bound.steps[1].pass.apply(to: &copy, context: context)
            entry = copy
        }
        let flops = 3 * pow(Double(n), 3) / 3 + 2 * pow(Double(n), 3)
        let total = planSeconds + applySeconds, limit = flops / sgemmRate
        print("  BAQ: plan \(fixed(planSeconds, 3)) s + GPTQ with the widths \(fixed(applySeconds, 3)) s = \(fixed(total, 3)) s; the same \(fixed(flops / 1e9, 0)) GFLOP at the sgemm rate: \(fixed(limit, 3)) s; ratio \(fixed(total / limit, 2))x")
        guard case .quantized(let mixed) = entry.payload else { return }
        let mixedBits = Double(CompressedTensorsLayout.storedByteCount(mixed) * 8) / Double(n * n)
        let uniform = try GPTQQuantizer(bits: 4, symmetric: false, granularity: .channel).quantize(w, shape: shape, hessian: h, threadCount: 2)
        let uniformBits = Double(CompressedTensorsLayout.storedByteCount(uniform) * 8) / Double(n * n)
        let errors = try [mixed, uniform].map { try ErrorMetrics.outputRelativeError(original: w, reconstruction: $0.dequantized(), rows: n, columns: n, gram: h) }
        print("  output error: BAQ \(String(format: "%.3e", errors[0])) at \(fixed(mixedBits, 3)) bits per weight, uniform GPTQ int4 \(String(format: "%.3e", errors[1])) at \(fixed(uniformBits, 3)) (\(fixed(errors[1] / errors[0], 2))x higher)")
    }
}
