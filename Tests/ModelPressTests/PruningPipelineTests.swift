import Foundation
import Testing
import TensorCore
import CheckpointFormats
import Passes
import Recipes
import Reports
@testable import ModelPress
import TestSupport

/// Pruning in the pipeline, on pico-llama with its committed calibration statistics: exact sparsity,
/// second-order pruning far ahead of magnitude pruning in output error (Wanda between), oBERT on the
/// committed per-sample gradients, and pruned zeros kept through quantization.
@Suite("Pruning in the pipeline")
struct PruningPipelineTests {
    typealias B = BitAllocationPipelineTests
    static let gradients = B.root.appendingPathComponent("TestModels/pico-llama-calibration/gradients.safetensors").path
    static let skip = "ignore=\"*embed*, lm_head.weight\""

    /// Mean output error over the 14 pruned layer weights.
    static func layerError(_ report: CompressionReport) -> Double {
        let errors = report.tensors.filter { $0.name.contains(".layers.") && $0.name.hasSuffix("proj.weight") }.compactMap(\.outputRelativeError)
        #expect(errors.count == 14)
        return errors.reduce(0, +) / Double(errors.count)
    }

    @Test("50% and 2:4 on pico-llama: prune.obs (SparseGPT) far below magnitude in output error; Wanda below magnitude at 2:4, level at 50%; sparsity exact")
    func ranking() throws {
        let dir = try TemporaryDirectory(prefix: "prune-rank")
        for pattern in ["sparsity=50%", "pattern=2:4"] {
            var errors: [String: Double] = [:]
            for pass in ["prune.magnitude", "prune.wanda", "prune.obs"] {
                let report = try B.run("\(pass) \(pattern) \(Self.skip)", output: "\(pass)-\(pattern.count).safetensors", in: dir)
                errors[pass] = Self.layerError(report)
                let pruned = report.tensors.filter { $0.name.contains(".layers.") && $0.name.hasSuffix("proj.weight") }
                #expect(pruned.allSatisfy { $0.sparsity == 0.5 }, "\(pass) \(pattern)")
            }
            let m = errors["prune.magnitude"]!, w = errors["prune.wanda"]!, o = errors["prune.obs"]!
            // Measured (mean over the 14 layer weights): 50%: magnitude 0.0466, Wanda 0.0480, SparseGPT
            // 0.0161 (0.34x); 2:4: 0.1087, 0.0920, 0.0297 (0.27x). pico's activations have no outlier
            // features (act_sq is nearly flat), so Wanda is per-row magnitude pruning here and only
            // the N:M pattern shows its gain; the synthetic layer with outlier features in
            // SparseGPTPrunerTests shows it at 50% too.
            #expect(o < 0.4 * m && o < 0.5 * w, "\(pattern): magnitude \(m), Wanda \(w), SparseGPT \(o)")
            if pattern.hasPrefix("pattern") { #expect(w < 0.9 * m, "2:4: Wanda \(w), magnitude \(m)") } else { #expect(abs(w / m - 1) < 0.1, "50%: Wanda \(w), magnitude \(m)") }
        }
    }

    @Test("oBERT on lm_head from the committed per-sample gradients: exact sparsity, 100x lower Fisher loss than magnitude; with damping for 16 samples, lower output error too")
    func obert() throws {
        let dir = try TemporaryDirectory(prefix: "prune-obert")
        for damp in ["1e-7", "1e-4"] {
            let recipe = try dir.write(text: "prune.obs hessian=fisher sparsity=50% fisher_damp=\(damp) targets=lm_head.weight", to: "o\(damp).recipe")
            var pipeline = CompressionPipeline(inputPath: B.pico, recipePath: recipe)
            pipeline.calibrationPath = Self.gradients
            _ = try pipeline.compress(outputPath: dir.url("o\(damp).safetensors"))
        }
        _ = try B.run("prune.magnitude sparsity=50% targets=lm_head.weight", output: "m.safetensors", in: dir)
        let original = try CheckpointReader.open(path: B.pico), statistics = try CalibrationStatistics.load(path: B.calibration)
        let h = try #require(try statistics.hessian(for: "lm_head.weight"))
        let grads = try #require(try CalibrationStatistics.load(path: Self.gradients).gradients(for: "lm_head.weight", elementCount: 32768))
        let w = try denseTensor(original, "lm_head.weight").floats()
        func pruned(_ file: String) throws -> [Float] { try denseTensor(try CheckpointReader.open(path: dir.url(file)), "lm_head.weight").floats() }
        func outputError(_ file: String) throws -> Double {
            try ErrorMetrics.outputRelativeError(original: w, reconstruction: try pruned(file), rows: 128, columns: 256, gram: h)
        }
        /// oBERT's objective without damping: δwᵀ F δw = (1/m) Σ_s (g_sᵀ δw)².
        func fisherLoss(_ file: String) throws -> Double {
            let p = try pruned(file)
            var total = 0.0
            for s in 0..<grads.samples {
                var d = 0.0
                for i in 0..<32768 { d += Double(grads.values[s * 32768 + i]) * Double(p[i] - w[i]) }
                total += d * d
            }
            return total / Double(grads.samples)
        }
        #expect(try pruned("o1e-7.safetensors").filter { $0 == 0 }.count == 16384)
        // Measured: Fisher loss 1.68e-6 (oBERT, λ = 1e-7) vs 2.02e-4 (magnitude); output error 0.0757 vs
        // 0.0537: with 16 samples (oBERT uses 1024) the Fisher has rank 16 per block of 50, and the
        // default λ lets updates run along directions the samples never saw. λ = 1e-4: 0.0344.
        let fO = try fisherLoss("o1e-7.safetensors"), fM = try fisherLoss("m.safetensors")
        #expect(fO < 0.02 * fM, "Fisher loss: oBERT \(fO), magnitude \(fM)")
        let eDamped = try outputError("o1e-4.safetensors"), eM = try outputError("m.safetensors")
        #expect(eDamped < 0.8 * eM, "output error: oBERT λ=1e-4 \(eDamped), magnitude \(eM)")
    }

    @Test("prune50-then-w4: every weight SparseGPT zeroed is still zero after 4-bit GPTQ; the output error stays near pruning's")
    func thenQuantize() throws {
        let dir = try TemporaryDirectory(prefix: "prune-w4")
        let recipe = B.root.appendingPathComponent("Recipes/prune50-then-w4.recipe").path
        var pipeline = CompressionPipeline(inputPath: B.pico, recipePath: recipe)
        pipeline.calibrationPath = B.calibration
        let both = try pipeline.compress(outputPath: dir.url("pw4.safetensors"))
        let pruneOnly = try B.run("prune.obs sparsity=50% \(Self.skip)", output: "p.safetensors", in: dir)
        let layers = both.tensors.filter { $0.name.contains(".layers.") && $0.name.hasSuffix("proj.weight") }
        #expect(layers.count == 14 && layers.allSatisfy { $0.sparsity >= 0.5 && $0.encoding == "int4 asym group:128" })
        let pruned = try CheckpointReader.open(path: dir.url("p.safetensors")), quantized = try CheckpointReader.open(path: dir.url("pw4.safetensors"))
        for name in layers.map(\.name) {
            let p = try denseTensor(pruned, name).floats()
            guard case .quantized(let q) = quantized[name]!.payload else { Issue.record("\(name) not quantized"); continue }
            #expect(zip(p, q.dequantized()).allSatisfy { $0.0 != 0 || $0.1 == 0 }, "\(name)")
        }
        let e = Self.layerError(both), ePrune = Self.layerError(pruneOnly)
        #expect(e > ePrune && e < 1.5 * ePrune, "pruned + int4 \(e) vs pruned \(ePrune)")
    }

    @Test("every quantizer keeps the zeros except ggml types with a block minimum, which warn; the report shows what remains")
    func quantizersKeepZeros() throws {
        let dir = try TemporaryDirectory(prefix: "prune-quantizers")
        for (quantizer, output, keeps) in [("quantize.nf4", "a.safetensors", true), ("quantize.fp8", "b.safetensors", true),
                                           ("quantize.ggml type=Q4_0", "c.gguf", true), ("quantize.ggml type=Q3_K", "d.gguf", true),
                                           ("quantize.ggml type=Q4_K", "e.gguf", false)] {
            let recipe = try dir.write(text: "prune.magnitude sparsity=50% targets=\"*mlp*\"\n\(quantizer) targets=\"*mlp*\"\n", to: "r.recipe")
            let notes = NoteLog()
            var pipeline = CompressionPipeline(inputPath: B.pico, recipePath: recipe)
            pipeline.note = { notes.append($0) }
            let report = try pipeline.compress(outputPath: dir.url(output))
            let mlp = report.tensors.filter { $0.name.contains(".mlp.") }
            #expect(mlp.count == 6)
            if keeps {
                #expect(mlp.allSatisfy { $0.sparsity >= 0.5 }, "\(quantizer): \(mlp.map(\.sparsity))")
                #expect(notes.lines.isEmpty, "\(quantizer): \(notes.lines)")
            } else {
                #expect(mlp.allSatisfy { $0.sparsity < 0.5 }, "\(quantizer): \(mlp.map(\.sparsity))")
                #expect(notes.lines.count == 6 && notes.lines.allSatisfy { $0.contains("does not keep zeros exactly") })
            }
        }
    }

    @Test("wiring mistakes are recipe errors before any weight is read: no statistics, no gradients, no Hessian")
    func problems() throws {
        let dir = try TemporaryDirectory(prefix: "prune-bad")
        func diagnostics(_ text: String, calibration: String?) throws -> [String] {
            let recipe = try dir.write(text: text, to: "bad.recipe")
            var pipeline = CompressionPipeline(inputPath: B.pico, recipePath: recipe)
            pipeline.calibrationPath = calibration
            do {
                _ = try pipeline.check()
                return []
            } catch let error as RecipeDiagnostics {
                return "\(error)".split(separator: "\n").map { String($0).replacingOccurrences(of: recipe + ":", with: "") }
            }
        }
        #expect(try diagnostics("prune.obs targets=\"*q_proj*\"\n", calibration: nil).first
                == "1:1: error: prune.obs needs calibration statistics: add a 'calibration stats=FILE' step or --calibration FILE")
        #expect(try diagnostics("prune.obs hessian=fisher targets=lm_head.weight\n", calibration: B.calibration).first
                == "1:1: error: prune.obs: tensor 'lm_head.weight': \(B.calibration) has no per-sample gradients for it; oBERT needs <W>.grads [samples, 32768]")
        #expect(try diagnostics("prune.obs targets=lm_head.weight\n", calibration: Self.gradients).first
                == "1:1: error: prune.obs: tensor 'lm_head.weight': \(Self.gradients) has no Hessian for it; SparseGPT needs <W>.hessian (hessian=fisher uses <W>.grads)")
        #expect(try diagnostics("prune.wanda targets=lm_head.weight\n", calibration: Self.gradients).first
                == "1:1: error: prune.wanda: tensor 'lm_head.weight': \(Self.gradients) has no statistics for it; Wanda needs act_sq")
        #expect(try diagnostics("prune.obs pattern=4:8 block=100 targets=lm_head.weight\n", calibration: B.calibration).first
                == "1:29: error: prune.obs block: block=100 is not a multiple of the group size 8")
    }
}

/// Notes collected from the pipeline (called from one thread at a time).
final class NoteLog: @unchecked Sendable {
    private(set) var lines: [String] = []
    func append(_ line: String) { lines.append(line) }
}
