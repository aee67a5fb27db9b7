import Foundation
import Testing
import TensorCore
import CheckpointFormats
import Recipes
import Passes
import Reports
@testable import ModelPress
import TestSupport

/// `allocate.bits` in the pipeline, on pico-llama with its committed calibration file: budgets met in
/// real storage, better output error than uniform widths at fewer bits, mixed GGUF types that gguf-py
/// reads, the same bytes at any thread count, and every wiring mistake reported before any weight is read.
@Suite("Bit allocation in the pipeline")
struct BitAllocationPipelineTests {
    static let pico = CompressionPipelineTests.pico
    static let root = CompressionPipelineTests.root
    static let calibration = root.appendingPathComponent("TestModels/pico-llama-calibration/calibration.safetensors").path
    static let linear = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

    /// Bits per weight of the report's records that `include` accepts, from the bytes as written.
    static func bitsPerWeight(_ report: CompressionReport, _ include: (TensorRecord) -> Bool) -> Double {
        let records = report.tensors.filter(include)
        return Double(records.reduce(0) { $0 + $1.outputByteCount } * 8) / Double(records.reduce(0) { $0 + $1.shape.elementCount })
    }

    static func isLinear(_ r: TensorRecord) -> Bool { r.name == "lm_head.weight" || linear.contains { r.name.contains($0) } }

    static func meanOutputError(_ report: CompressionReport) -> Double {
        let errors = report.tensors.compactMap(\.outputRelativeError)
        return errors.reduce(0, +) / Double(errors.count)
    }

    static func run(_ text: String, output: String, in dir: TemporaryDirectory, threads: Int = 1) throws -> CompressionReport {
        let recipe = try dir.write(text: text, to: "r\(abs(text.hashValue)).recipe")
        var pipeline = CompressionPipeline(inputPath: pico, recipePath: recipe)
        pipeline.calibrationPath = calibration
        pipeline.threadCount = threads
        return try pipeline.compress(outputPath: dir.url(output))
    }

    @Test("per-tensor widths under GPTQ: at most 4 bits per weight in real storage, and a lower output error than uniform GPTQ int4 (4.06)")
    func tensorWidthsBeatUniform() throws {
        let dir = try TemporaryDirectory(prefix: "allocate-tensor")
        let allocated = try Self.run("""
            allocate.bits average=4 granularity=tensor ignore="*embed*"
            quantize.int bits=auto method=gptq ignore="*embed*"
            """, output: "a.safetensors", in: dir)
        let uniform = try Self.run("quantize.int bits=4 method=gptq ignore=\"*embed*\"\n", output: "u.safetensors", in: dir)
        let bits = Self.bitsPerWeight(allocated, Self.isLinear)
        // 15 tensors; the largest single step (one [256, 256] tensor up one bit) is 65536 bits of 819200 weights' budget.
        #expect(bits <= 4 && bits >= 4 - 65536.0 / 819_200, "\(bits)")
        #expect(Set(allocated.tensors.filter(Self.isLinear).map(\.encoding)).count >= 2, "mixed widths")
        let uniformBits = Self.bitsPerWeight(uniform, Self.isLinear)
        #expect(uniformBits > bits)
        #expect(Self.meanOutputError(allocated) < Self.meanOutputError(uniform),
                "allocated \(Self.meanOutputError(allocated)) at \(bits) vs uniform \(Self.meanOutputError(uniform)) at \(uniformBits)")
    }

    @Test("BAQ recipes on pico-llama: per-column widths meet 3 and 4 bits per weight within 0.01 and beat uniform GPTQ at 3 and 4 bits, which store more",
          arguments: [3, 4])
    func columnWidthsBeatUniform(bits: Int) throws {
        let dir = try TemporaryDirectory(prefix: "allocate-columns")
        func run(_ recipe: String, _ output: String) throws -> CompressionReport {
            try CompressionPipeline(inputPath: Self.pico, recipePath: Self.root.appendingPathComponent("Recipes/\(recipe)").path,
                                    overrides: [("bits", "\(bits)")]).compress(outputPath: dir.url(output))
        }
        let baq = try run("baq-avg3.recipe", "baq.safetensors")
        let uniform = try run("gptq-int4.recipe", "uniform.safetensors")
        let baqBits = Self.bitsPerWeight(baq, Self.isLinear), uniformBits = Self.bitsPerWeight(uniform, Self.isLinear)
        #expect(baqBits <= Double(bits) && baqBits > Double(bits) - 0.01, "\(baqBits)")
        #expect(uniformBits > baqBits)
        #expect(baq.tensors.filter(Self.isLinear).allSatisfy { $0.encoding.hasSuffix("sym channel mixed") })
        // This run: 3 bits 0.0536 vs 0.108 (3.31 bits), 4 bits 0.0106 vs 0.0222 (4.06 bits).
        #expect(Self.meanOutputError(baq) * 1.5 < Self.meanOutputError(uniform), "BAQ \(Self.meanOutputError(baq)) vs uniform \(Self.meanOutputError(uniform))")
    }

    @Test("target=ggml: a mixed GGUF within the budget whose types gguf-py reads back; it beats every single type that fits")
    func ggmlMixed() throws {
        let dir = try TemporaryDirectory(prefix: "allocate-ggml")
        let recipe = Self.root.appendingPathComponent("Recipes/gguf-baq-mixed.recipe").path
        let report = try CompressionPipeline(inputPath: Self.pico, recipePath: recipe).compress(outputPath: dir.url("mixed.gguf"))
        let bits = Self.bitsPerWeight(report, Self.isLinear)
        #expect(bits <= 4 && bits > 3.9, "\(bits)")
        let types = Dictionary(report.tensors.filter(Self.isLinear).map { ($0.name, $0.encoding) }, uniquingKeysWith: { a, _ in a })
        #expect(Set(types.values).count >= 2, "\(types)")
        // The same allocation, stated as fixed types, gives the same file; and the only single type
        // within 4 bits (Q3_K, 3.44) loses more.
        let q3 = try Self.run("quantize.ggml type=Q3_K ignore=\"*embed*\"\nquantize.ggml type=Q6_K targets=\"*embed*\"\n", output: "q3.gguf", in: dir)
        #expect(Self.meanOutputError(report) < Self.meanOutputError(q3))
        // gguf-py reads every tensor with the type we report.
        let script = """
            import sys, gguf
            r = gguf.GGUFReader(sys.argv[1])
            for t in r.tensors: print(t.name, t.tensor_type.name)
            """
        let path = try dir.write(text: script, to: "read_types.py")
        let result = try PythonRunner.run([path, dir.url("mixed.gguf")])
        #expect(result.status == 0, "\(result.stderr)")
        let read = Dictionary(result.stdout.split(separator: "\n").map { line -> (String, String) in
            let parts = line.split(separator: " ")
            return (String(parts[0]), String(parts[1]))
        }, uniquingKeysWith: { a, _ in a })
        let gguf = try GGUFReader.open(path: dir.url("mixed.gguf"))
        for entry in gguf.entries {
            guard case .ggml(let t) = entry.payload else { continue }
            #expect(read[entry.name] == t.typeName, "\(entry.name)")
        }
        #expect(read.count == 21)
    }

    @Test("the plan and the file are the same at 1 and 3 threads")
    func threadIndependent() throws {
        let dir = try TemporaryDirectory(prefix: "allocate-threads")
        let text = """
            allocate.bits average=3.5 granularity=tensor ignore="*embed*"
            quantize.int bits=auto granularity=group:64 symmetric=false ignore="*embed*"
            """
        _ = try Self.run(text, output: "one.safetensors", in: dir, threads: 1)
        _ = try Self.run(text, output: "three.safetensors", in: dir, threads: 3)
        #expect(try TemporaryDirectory.read(dir.url("one.safetensors")) == (try TemporaryDirectory.read(dir.url("three.safetensors"))))
    }

    @Test("wiring mistakes are recipe errors at their step, before any weight is read; an impossible budget is exit 65 with nothing written")
    func problems() throws {
        let dir = try TemporaryDirectory(prefix: "allocate-bad")
        func diagnostics(_ text: String, calibration: Bool = true) throws -> [String] {
            let recipe = try dir.write(text: text, to: "bad.recipe")
            var pipeline = CompressionPipeline(inputPath: Self.pico, recipePath: recipe)
            pipeline.calibrationPath = calibration ? Self.calibration : nil
            do {
                _ = try pipeline.check()
                return []
            } catch let error as RecipeDiagnostics {
                return "\(error)".split(separator: "\n").map { String($0).replacingOccurrences(of: recipe + ":", with: "") }
            }
        }
        let q = "model.layers.0.self_attn.q_proj.weight"
        #expect(try diagnostics("quantize.int bits=auto targets=\"*q_proj*\"\n").first
                == "1:1: error: quantize.int: tensor '\(q)' has no setting planned by an earlier allocate.bits step")
        #expect(try diagnostics("allocate.bits targets=\"*q_proj*\"\nquantize.int bits=4 targets=\"*q_proj*\"\n").first
                == "1:1: error: allocate.bits: tensor '\(q)' is planned, but no later step takes the plan (quantize.int bits=auto or quantize.ggml type=auto)")
        #expect(try diagnostics("allocate.bits target=ggml targets=\"*q_proj*\"\nquantize.int bits=auto targets=\"*q_proj*\"\n").first
                == "1:1: error: allocate.bits: tensor '\(q)': target=ggml plans types for quantize.ggml type=auto, not quantize.int")
        #expect(try diagnostics("allocate.bits targets=\"*q_proj*\"\nquantize.int bits=auto granularity=group:64 targets=\"*q_proj*\"\n").first
                == "1:1: error: allocate.bits: tensor '\(q)': granularity=column needs quantize.int granularity=channel (one scale per row and width), not group:64")
        #expect(try diagnostics("allocate.bits targets=\"*q_proj*\"\nquantize.int bits=auto targets=\"*q_proj*\"\n", calibration: false).first
                == "1:1: error: allocate.bits needs calibration statistics: add a 'calibration stats=FILE' step or --calibration FILE")
        #expect(try diagnostics("allocate.bits targets=\"*embed*\"\nquantize.int bits=auto targets=\"*embed*\"\n").first
                == "1:1: error: allocate.bits: tensor 'model.embed_tokens.weight': \(Self.calibration) has no statistics for it (add proxy=weights to allocate without)")
        #expect(try diagnostics("allocate.bits min=5 max=3 targets=\"*q_proj*\"\nquantize.int bits=auto targets=\"*q_proj*\"\n").first
                == "1:19: error: allocate.bits min: min=5 is above max=3")
        #expect(try diagnostics("allocate.bits granularity=tensor min=1 targets=\"*q_proj*\"\nquantize.int bits=auto targets=\"*q_proj*\"\n").first
                == "1:38: error: allocate.bits min: granularity=tensor needs min=2 or more (quantize.int widths are 2...8)")
        #expect(try diagnostics("allocate.bits targets=\"*q_proj*\"\nallocate.bits targets=\"*q_proj*\"\nquantize.int bits=auto targets=\"*q_proj*\"\n")
                .contains("2:1: error: tensor '\(q)' is already planned by the step at 1:1"))
        // An average below the cheapest choice (2 bits plus scales) is found while planning: exit 65, no file.
        do {
            _ = try Self.run("allocate.bits average=1 granularity=tensor targets=\"*q_proj*\"\nquantize.int bits=auto targets=\"*q_proj*\"\n",
                             output: "none.safetensors", in: dir)
            Issue.record("no error")
        } catch let error as AllocationError {
            // int2 per channel on [256, 256]: 256 rows × 16 words × 4 bytes of codes, 256 F16 scales, an
            // 8-byte shape entry per dimension: 16912 bytes = 2.064 bits per weight.
            #expect("\(error)" == "allocate.bits: average=1.0 is below the smallest storage the choices allow (2.064 bits per weight)")
            #expect(ExitStatus.code(for: error) == ExitStatus.dataError)
        }
        #expect(!FileManager.default.fileExists(atPath: dir.url("none.safetensors")))
    }

    /// algorithms.md Appendix A's synthetic layer, at 256×256: `X = Z·(I + 0.5·A)·diag(s)`, `s_j =
    /// exp(0.8·N(0,1))`, the first 8 channels ×20, `W ~ 0.02·N(0,1)`, `H = XᵀX/N` (N = 4096 tokens).
    static func syntheticLayer(in dir: TemporaryDirectory) throws -> (model: String, calibration: String) {
        let n = 256, tokens = 4096
        var rng = SeededGenerator(seed: 0)
        let w = rng.gaussianFloats(count: n * n, standardDeviation: 0.02)
        var mix = rng.gaussianFloats(count: n * n, standardDeviation: 0.5 / Float(n).squareRoot())
        for j in 0..<n { mix[j * n + j] += 1 }
        let s = (0..<n).map { j in Float(exp(0.8 * rng.nextGaussian())) * (j < 8 ? 20 : 1) }
        let z = rng.gaussianFloats(count: tokens * n)
        var x = [Float](repeating: 0, count: tokens * n)
        BLAS.gemm(.none, .none, m: tokens, n: n, k: n, a: z, lda: n, b: mix, ldb: n, c: &x, ldc: n)
        for t in 0..<tokens { for j in 0..<n { x[t * n + j] *= s[j] } }
        var h = [Float](repeating: 0, count: n * n)
        BLAS.gemm(.transposed, .none, m: n, n: n, k: tokens, alpha: 1 / Float(tokens), a: x, lda: n, b: x, ldb: n, c: &h, ldc: n)
        let model = dir.url("layer.safetensors"), calibration = dir.url("layer-calibration.safetensors")
        try SafetensorsWriter.write(try Checkpoint(entries: [TensorEntry(name: "layer.weight", tensor: try DenseTensor(floats: w, shape: Shape([n, n])))]), to: model)
        try SafetensorsWriter.write(try Checkpoint(entries: [TensorEntry(name: "layer.weight.hessian", tensor: try DenseTensor(floats: h, shape: Shape([n, n])))]), to: calibration)
        return (model, calibration)
    }

    @Test("BAQ on the synthetic layer: at uniform GPTQ int3's real bits per weight, per-column widths give a several times lower output error")
    func syntheticLayerGain() throws {
        let dir = try TemporaryDirectory(prefix: "baq-synthetic")
        let (model, calibration) = try Self.syntheticLayer(in: dir)
        func run(_ text: String, _ name: String) throws -> TensorRecord {
            let recipe = try dir.write(text: text, to: name + ".recipe")
            var pipeline = CompressionPipeline(inputPath: model, recipePath: recipe)
            pipeline.calibrationPath = calibration
            return try pipeline.compress(outputPath: dir.url(name + ".safetensors")).tensors[0]
        }
        let uniform = try run("quantize.int bits=3 granularity=channel symmetric=false method=gptq\n", "uniform")
        let average = uniform.bitsPerWeight
        let baq = try run("allocate.bits average=\(average)\nquantize.int bits=auto granularity=channel symmetric=false method=gptq\n", "baq")
        // One tensor: its rows of codes are whole bytes, so the budget can be met to one byte per row,
        // 8 / 256 = 0.031 bits per weight (many tensors, or wider rows, get within 0.01: see the recipes).
        #expect(baq.bitsPerWeight <= average && baq.bitsPerWeight > average - 8.0 / 256, "\(baq.bitsPerWeight) for \(average)")
        let gain = uniform.outputRelativeError! / baq.outputRelativeError!
        // algorithms.md reports 9–10x for BAQ's two-pass GPTQ on the 768-wide layer; this run: 10.4x.
        #expect(gain > 8, "uniform \(uniform.outputRelativeError!) vs BAQ \(baq.outputRelativeError!)")
    }
}
