import Foundation
import TensorCore
import CheckpointFormats
import Passes
import Recipes
import Reports

/// `prune.obs` (SparseGPT) on one [n, n] layer with an [n, n] Hessian (default n = 4096), 50%
/// unstructured and 2:4, against the time OpenBLAS sgemm needs for the same number of
/// floating-point operations on this machine.
///
/// FLOPs counted: the factorization of the inverse Hessian (2n³/3, as GPTQ) plus the column updates (2·rows·n²,
/// inside the blocks and in the block GEMMs). Mask selection and scoring are O(rows·n) and not
/// counted. The bound is those flops at the sgemm rate of an [n, n] × [n, n] product.
struct SparseGPTBenchmark {
    let n: Int

    func run() throws {
        let layer = SecondOrderLayer(n: n)
        let w = layer.w, h = layer.h, sgemm = layer.sgemmSeconds, sgemmRate = layer.sgemmRate
        let flops = 2 * pow(Double(n), 3) / 3 + 2 * pow(Double(n), 3)
        let bound = flops / sgemmRate
        print("prune.obs (SparseGPT) benchmark: [\(n), \(n)] weight, [\(n), \(n)] Hessian, block 128, 2 threads, median of 3")
        print("  sgemm [\(n), \(n)] x [\(n), \(n)]: \(fixed(sgemm, 3)) s, \(fixed(sgemmRate / 1e9, 1)) GFLOP/s; bound for \(fixed(flops / 1e9, 0)) GFLOP: \(fixed(bound, 3)) s")
        let shape = Shape([n, n])
        for target in [PruningTarget(sparsity: 0.5), PruningTarget(sparsity: 0.5, pattern: .nOfM(kept: 2, group: 4))] {
            let pruner = SparseGPTPruner(target: target)
            var result: (values: [Float], mask: [Bool]) = ([], [])
            let seconds = try medianSeconds(repetitions: 3) { result = try pruner.prune(w, shape: shape, hessian: h, threadCount: 2) }
            // Quality: output error against magnitude pruning with the same pattern (per-tensor for
            // unstructured, per group for N:M), through the prune.magnitude pass itself.
            var entry = TensorEntry(name: "w.weight", tensor: try DenseTensor(floats: w, shape: shape))
            let text = target.pattern == .unstructured ? "sparsity=50%" : "pattern=\(target.pattern)"
            try magnitudePass(text).apply(to: &entry, context: PassContext(threadCount: 2))
            guard case .dense(let m) = entry.payload else { return }
            let eObs = try ErrorMetrics.outputRelativeError(original: w, reconstruction: result.values, rows: n, columns: n, gram: h)
            let eMagnitude = try ErrorMetrics.outputRelativeError(original: w, reconstruction: try m.floats(), rows: n, columns: n, gram: h)
            print("  \(target.pattern) \(fixed(target.sparsity * 100, 0))%: \(fixed(seconds, 3)) s, \(fixed(seconds / bound, 2))x the bound; output error \(String(format: "%.3e", eObs)) vs magnitude \(String(format: "%.3e", eMagnitude)) (\(fixed(eMagnitude / eObs, 2))x lower)")
        }
    }

    private func magnitudePass(_ options: String) throws -> any CompressionPass {
        let recipe = try RecipeParser.parse(text: "prune.magnitude \(options)", file: "bench")
        let manifest = CheckpointManifest(entries: [CheckpointManifest.Entry(name: "w.weight", shape: Shape([n, n]), dtype: .f32)])
        return try PassRegistry.builtIn.bind(recipe, manifest: manifest)[0].pass
    }
}
