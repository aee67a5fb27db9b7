import Foundation
import TensorCore
import Passes
import Reports

/// GPTQ on one [n, n] layer with an [n, n] Hessian (default n = 4096), 4-bit per channel, against
/// the time OpenBLAS sgemm needs for the same number of floating-point operations on this machine.
///
/// FLOPs counted for GPTQ: the factorization of the inverse Hessian (one Cholesky n³/3 and one
/// triangular inverse n³/3: 2n³/3) plus the column updates (2·rows·n² flops, inside the blocks and in
/// the block GEMMs).
/// The bound is those flops at the sgemm rate measured on an [n, n] × [n, n] product (the best
/// case for dense float work on this machine).
struct GPTQBenchmark {
    let n: Int

    func run() throws {
        let layer = SecondOrderLayer(n: n)
        let w = layer.w, h = layer.h, sgemm = layer.sgemmSeconds, sgemmRate = layer.sgemmRate
        print("GPTQ benchmark: [\(n), \(n)] weight, [\(n), \(n)] Hessian, 4-bit per channel, block 128, median of 3")
        print("  sgemm [\(n), \(n)] x [\(n), \(n)]: \(fixed(sgemm, 3)) s, \(fixed(sgemmRate / 1e9, 1)) GFLOP/s")
        let gptq = GPTQQuantizer(bits: 4, symmetric: false, granularity: .channel)
        let shape = Shape([n, n])
        let seconds = try medianSeconds(repetitions: 3) { blackHole(try gptq.quantize(w, shape: shape, hessian: h, threadCount: 2)) }
        let flops = 2 * pow(Double(n), 3) / 3 + 2 * pow(Double(n), 3)
        let bound = flops / sgemmRate
        print("  GPTQ: \(fixed(seconds, 3)) s; the same \(fixed(flops / 1e9, 0)) GFLOP at the sgemm rate: \(fixed(bound, 3)) s; ratio \(fixed(seconds / bound, 2))x")
        // Quality on the same layer: output error tr(ΔW H ΔWᵀ) / tr(W H Wᵀ), GPTQ against round to nearest.
        let rtn = IntegerQuantizer(bits: 4, symmetric: false, granularity: .channel).quantize(w, shape: shape)
        let ordered = try GPTQQuantizer(bits: 4, symmetric: false, granularity: .channel, actOrder: true).quantize(w, shape: shape, hessian: h, threadCount: 2)
        let plain = try gptq.quantize(w, shape: shape, hessian: h, threadCount: 2)
        var errors: [Double] = []
        for q in [rtn, plain, ordered] {
            errors.append(try ErrorMetrics.outputRelativeError(original: w, reconstruction: q.dequantized(), rows: n, columns: n, gram: h))
        }
        print("  output error: round to nearest \(String(format: "%.3e", errors[0])), GPTQ \(String(format: "%.3e", errors[1])) (\(fixed(errors[0] / errors[1], 2))x lower), GPTQ act-order \(String(format: "%.3e", errors[2])) (\(fixed(errors[0] / errors[2], 2))x lower)")
    }
}
