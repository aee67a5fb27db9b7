import Foundation
import Testing
import TensorCore
import CheckpointFormats
import Recipes
import Passes
import Reports
@testable import ModelPress
import TestSupport

/// Calibration statistics in `compress`: the `calibration` step and `--calibration` feed
/// quantize.ggml the imatrix as llama-quantize uses it, and every problem is caught before any
/// weight is read.
@Suite("Calibration in the pipeline")
struct CalibrationPipelineTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/llama-quantize").path
    static let pico = CompressionPipelineTests.pico

    @Test("quantize.ggml with llama-imatrix's file gives llama-quantize's bytes (Q2_K --pure --imatrix), relative stats= path")
    func imatrixMatchesLlamaQuantize() throws {
        let dir = try TemporaryDirectory(prefix: "calibration")
        _ = try dir.write(try TemporaryDirectory.read(Self.fixtures + "/imatrix.gguf"), to: "imatrix.gguf")
        let recipe = try dir.write(text: """
            calibration stats=imatrix.gguf
            quantize.ggml type=Q2_K targets="*attn_q*, *attn_k*, *attn_v*, *ffn_gate*, *ffn_up*, token_embd.weight, output.weight"
            quantize.ggml type=Q4_0 targets="*attn_output*, *ffn_down*"   # the 64-element rows: llama-quantize's fallback
            """, to: "q2k.recipe")
        let warnings = WarningLog()
        var pipeline = CompressionPipeline(inputPath: Self.fixtures + "/model-f16.gguf", recipePath: recipe)
        pipeline.warning = { warnings.append($0) }
        _ = try pipeline.compress(outputPath: dir.url("out.gguf"))
        let ours = try GGUFReader.open(path: dir.url("out.gguf"))
        let theirs = try GGUFReader.open(path: Self.fixtures + "/Q2_K-pure-imatrix.gguf")
        var compared = 0
        for entry in theirs.entries {
            guard case .ggml(let expected) = entry.payload else { continue }
            guard case .ggml(let actual)? = ours[entry.name]?.payload else { Issue.record("\(entry.name) not quantized"); continue }
            #expect(actual.type == expected.type && actual.storage == expected.storage, "\(entry.name)")
            compared += 1
        }
        #expect(compared == 23, "3 blocks of 7 weights, token_embd and output")
        // llama-imatrix collects nothing for the embeddings and output: llama-quantize and we quantize them without.
        #expect(warnings.lines.sorted() == ["output.weight", "token_embd.weight"].map {
            "\(dir.url("imatrix.gguf")): no statistics for \($0); quantize.ggml quantizes it without them"
        })
    }

    @Test("act_sq statistics under HF names, an imatrix under GGUF names, and --calibration all reach the same tensors")
    func namesAndSources() throws {
        let dir = try TemporaryDirectory(prefix: "calibration-names")
        let original = try CheckpointReader.open(path: Self.pico)
        var rng = SeededGenerator(seed: 5)
        var statistics: [TensorEntry] = []
        var imatrix: [(String, [Float])] = []
        let weight = "model.layers.1.mlp.up_proj.weight"
        let importance = (0..<256).map { _ in Float(rng.nextUnitDouble() * 4 + 0.01) }
        statistics.append(TensorEntry(name: weight + ".act_sq", tensor: try DenseTensor(floats: importance, shape: Shape([256]))))
        imatrix.append(("blk.1.ffn_up.weight", importance))
        try SafetensorsWriter.write(try Checkpoint(entries: statistics), to: dir.url("stats.safetensors"))
        _ = try dir.write(Self.imatrixDat(imatrix), to: "imatrix.dat")
        let recipe = try dir.write(text: "quantize.ggml type=Q4_K targets=\"*mlp.up_proj*\"\n", to: "r.recipe")
        var outputs: [[UInt8]] = []
        for (name, calibration) in [("plain", nil), ("act_sq", dir.url("stats.safetensors")), ("dat", dir.url("imatrix.dat"))] {
            var pipeline = CompressionPipeline(inputPath: Self.pico, recipePath: recipe)
            pipeline.calibrationPath = calibration
            _ = try pipeline.compress(outputPath: dir.url("\(name).gguf"))
            guard case .ggml(let t)? = try GGUFReader.open(path: dir.url("\(name).gguf"))[weight]?.payload else { Issue.record("no \(weight)"); return }
            outputs.append(t.storage.array)
        }
        guard case .dense(let source)? = original[weight]?.payload else { Issue.record("missing"); return }
        let direct = try GGMLQuantization.quantize(source, name: weight, to: .q4_K, importance: importance)
        #expect(outputs[1] == direct.storage.array)
        #expect(outputs[2] == outputs[1])
        #expect(outputs[0] != outputs[1], "the importance weights change the codes")
    }

    @Test("calibration problems are reported with the recipe's other problems, before anything is written")
    func problems() throws {
        let dir = try TemporaryDirectory(prefix: "calibration-bad")
        let short = try DenseTensor(floats: [1, 2, 3], shape: Shape([3]))
        try SafetensorsWriter.write(try Checkpoint(entries: [TensorEntry(name: "model.layers.0.mlp.up_proj.weight.act_sq", tensor: short)]),
                                    to: dir.url("short.safetensors"))
        let recipe = try dir.write(text: "calibration stats=short.safetensors\nquantize.ggml type=Q8_0 targets=\"*up_proj*\"\n", to: "r.recipe")
        #expect(throws: RecipeDiagnostics([RecipeDiagnostic(SourceLocation(file: recipe, line: 2, column: 1),
            "quantize.ggml: tensor 'model.layers.0.mlp.up_proj.weight': \(dir.url("short.safetensors")) has 3 importance weights for rows of 256")])) {
            _ = try CompressionPipeline(inputPath: Self.pico, recipePath: recipe).compress(outputPath: dir.url("out.gguf"))
        }
        let format = try dir.write(text: "output format=gguf\nquantize.int\n", to: "f.recipe")
        #expect(throws: UsageError("\(format):1:1: error: the recipe asks for gguf output, but -o is \(dir.url("out.safetensors"))")) {
            _ = try CompressionPipeline(inputPath: Self.pico, recipePath: format).compress(outputPath: dir.url("out.safetensors"))
        }
        let notStats = try dir.write(text: "hello", to: "notes.txt")
        var pipeline = CompressionPipeline(inputPath: Self.pico, recipePath: recipe)
        pipeline.calibrationPath = notStats
        #expect(throws: CalibrationError(file: notStats, message: "not a calibration file (expected an imatrix .dat or .gguf, or a .safetensors statistics file)")) {
            _ = try pipeline.compress(outputPath: dir.url("out.gguf"))
        }
        #expect(try dir.entries().filter { $0.hasPrefix("out") }.isEmpty)
    }

    /// llama.cpp's legacy imatrix `.dat` with ncall = 1.
    static func imatrixDat(_ entries: [(String, [Float])]) -> [UInt8] {
        var bytes: [UInt8] = []
        func int32(_ v: Int) { withUnsafeBytes(of: Int32(v).littleEndian) { bytes += $0 } }
        int32(entries.count)
        for (name, values) in entries {
            int32(name.utf8.count); bytes += Array(name.utf8)
            int32(1); int32(values.count)
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        }
        return bytes
    }
}

/// Collects warning lines from a `@Sendable` callback.
final class WarningLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func append(_ line: String) { lock.lock(); stored.append(line); lock.unlock() }
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return stored }
}

@Suite("output_relative_error in reports")
struct OutputErrorReportTests {
    @Test("the report gives tr(ΔW H ΔWᵀ)/tr(W H Wᵀ): the full Hessian where the file has one, its diagonal otherwise, nothing for other tensors")
    func outputError() throws {
        let dir = try TemporaryDirectory(prefix: "report-output-error")
        var rng = SeededGenerator(seed: 21)
        let n = 256
        // A symmetric positive definite H = A Aᵀ / n + 0.1 I for q_proj of layer 0; act_sq for up_proj of layer 1.
        let a = (0..<(n * n)).map { _ in Float(rng.nextUnitDouble() * 2 - 1) }
        var h = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n {
            var sum = 0.0
            for k in 0..<n { sum += Double(a[i * n + k]) * Double(a[j * n + k]) }
            h[i * n + j] = Float(sum / Double(n)) + (i == j ? 0.1 : 0)
        } }
        let diagonal = (0..<n).map { _ in Float(rng.nextUnitDouble() * 3 + 0.05) }
        let q = "model.layers.0.self_attn.q_proj.weight", up = "model.layers.1.mlp.up_proj.weight"
        try SafetensorsWriter.write(try Checkpoint(entries: [
            TensorEntry(name: q + ".hessian", tensor: try DenseTensor(floats: h, shape: Shape([n, n]))),
            TensorEntry(name: up + ".act_sq", tensor: try DenseTensor(floats: diagonal, shape: Shape([n]))),
        ]), to: dir.url("stats.safetensors"))
        let recipe = try dir.write(text: "quantize.int bits=4 granularity=channel\n", to: "r.recipe")
        var pipeline = CompressionPipeline(inputPath: CompressionPipelineTests.pico, recipePath: recipe)
        pipeline.calibrationPath = dir.url("stats.safetensors")
        let report = try pipeline.compress(outputPath: dir.url("out.safetensors"))
        let original = try CheckpointReader.open(path: CompressionPipelineTests.pico)
        let written = try CheckpointReader.open(path: dir.url("out.safetensors"))
        func values(_ c: Checkpoint, _ name: String) throws -> [Float] {
            switch c[name]!.payload {
            case .dense(let t): return try t.floats()
            case .quantized(let t): return t.dequantized()
            default: return []
            }
        }
        // Independent Double computation.
        for (name, full) in [(q, true), (up, false)] {
            let w = try values(original, name), r = try values(written, name)
            let rows = w.count / n
            var signal = 0.0, noise = 0.0
            for row in 0..<rows {
                for i in 0..<n { for j in 0..<n where full || i == j {
                    let hij = full ? Double(h[i * n + j]) : Double(diagonal[i])
                    let wi = Double(w[row * n + i]), wj = Double(w[row * n + j])
                    let ei = wi - Double(r[row * n + i]), ej = wj - Double(r[row * n + j])
                    signal += wi * hij * wj
                    noise += ei * hij * ej
                } }
            }
            let expected = noise / signal
            let actual = try #require(report.tensors.first { $0.name == name }?.outputRelativeError)
            #expect(abs(actual - expected) <= 1e-4 * expected, "\(name): \(actual) vs \(expected)")
        }
        #expect(report.tensors.filter { $0.outputRelativeError != nil }.count == 2)
    }
}

@Suite("GPTQ in the pipeline")
struct GPTQPipelineTests {
    /// Statistics for every linear weight of pico-llama: full Hessians of correlated synthetic
    /// inputs (H = XᵀX / T, one X per input width), and their diagonals as act_sq.
    static func statistics(in dir: TemporaryDirectory, full: Bool) throws -> String {
        let original = try CheckpointReader.open(path: CompressionPipelineTests.pico)
        var byWidth: [Int: [Float]] = [:]
        var entries: [TensorEntry] = []
        for entry in original.entries where entry.shape.rank == 2 && entry.name.hasSuffix("proj.weight") {
            let n = entry.shape.columnCount
            if byWidth[n] == nil {
                var rng = SeededGenerator(seed: UInt64(n))
                let tokens = 2 * n
                let z = rng.gaussianFloats(count: tokens * n)
                let mix = rng.gaussianFloats(count: n * n, standardDeviation: 1 / Float(n).squareRoot())
                var x = [Float](repeating: 0, count: tokens * n)
                BLAS.gemm(.none, .none, m: tokens, n: n, k: n, a: z, lda: n, b: mix, ldb: n, c: &x, ldc: n)
                for t in 0..<tokens { for j in 0..<n { x[t * n + j] *= 1 + Float(j % 5) } }
                var h = [Float](repeating: 0, count: n * n)
                BLAS.gemm(.transposed, .none, m: n, n: n, k: tokens, alpha: 1 / Float(tokens), a: x, lda: n, b: x, ldb: n, c: &h, ldc: n)
                byWidth[n] = h
            }
            let h = byWidth[n]!
            if full {
                entries.append(TensorEntry(name: entry.name + ".hessian", tensor: try DenseTensor(floats: h, shape: Shape([n, n]))))
            } else {
                entries.append(TensorEntry(name: entry.name + ".act_sq", tensor: try DenseTensor(floats: (0..<n).map { h[$0 * n + $0] }, shape: Shape([n]))))
            }
        }
        let path = dir.url(full ? "hessians.safetensors" : "act_sq.safetensors")
        try SafetensorsWriter.write(try Checkpoint(entries: entries), to: path)
        return path
    }

    @Test("method=gptq lowers every layer's output error against round-to-nearest at the same bits")
    func gptqBeatsRTN() throws {
        let dir = try TemporaryDirectory(prefix: "gptq")
        let stats = try Self.statistics(in: dir, full: true)
        var reports: [String: CompressionReport] = [:]
        for method in ["rtn", "gptq"] {
            let recipe = try dir.write(text: "quantize.int bits=4 granularity=group:64 symmetric=false method=\(method) targets=\"*proj.weight\"\n", to: "\(method).recipe")
            var pipeline = CompressionPipeline(inputPath: CompressionPipelineTests.pico, recipePath: recipe)
            pipeline.calibrationPath = stats
            reports[method] = try pipeline.compress(outputPath: dir.url("\(method).safetensors"))
        }
        let rtn = reports["rtn"]!, gptq = reports["gptq"]!
        #expect(rtn.totals.outputByteCount == gptq.totals.outputByteCount, "equal real bits per weight")
        var compared = 0
        for (a, b) in zip(rtn.tensors, gptq.tensors) where a.outputRelativeError != nil {
            #expect(b.outputRelativeError! < 0.9 * a.outputRelativeError!, "\(a.name): GPTQ \(b.outputRelativeError!) vs RTN \(a.outputRelativeError!)")
            compared += 1
        }
        #expect(compared == 14)
    }

    @Test("GPTQ without statistics, or with only diagonals, stops before reading weights unless hessian=diagonal")
    func needsHessian() throws {
        let dir = try TemporaryDirectory(prefix: "gptq-needs")
        let recipe = try dir.write(text: "quantize.int bits=4 method=gptq targets=\"*q_proj.weight\"\n", to: "r.recipe")
        #expect(throws: RecipeDiagnostics([RecipeDiagnostic(SourceLocation(file: recipe, line: 1, column: 1),
            "quantize.int needs calibration statistics: add a 'calibration stats=FILE' step or --calibration FILE")])) {
            _ = try CompressionPipeline(inputPath: CompressionPipelineTests.pico, recipePath: recipe).compress(outputPath: dir.url("o.safetensors"))
        }
        let diagonal = try Self.statistics(in: dir, full: false)
        var pipeline = CompressionPipeline(inputPath: CompressionPipelineTests.pico, recipePath: recipe)
        pipeline.calibrationPath = diagonal
        do {
            _ = try pipeline.compress(outputPath: dir.url("o.safetensors"))
            Issue.record("no error")
        } catch let error as RecipeDiagnostics {
            #expect(error.diagnostics.count == 2)
            #expect(error.diagnostics[0].message.contains("has only the diagonal of its Hessian"))
        }
        let allowed = try dir.write(text: "quantize.int bits=4 method=gptq hessian=diagonal targets=\"*q_proj.weight\"\n", to: "d.recipe")
        var diagonalPipeline = CompressionPipeline(inputPath: CompressionPipelineTests.pico, recipePath: allowed)
        diagonalPipeline.calibrationPath = diagonal
        let report = try diagonalPipeline.compress(outputPath: dir.url("d.safetensors"))
        #expect(report.tensors.filter { ($0.outputRelativeError ?? 0) > 0 }.map(\.name)
                == ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.q_proj.weight"])
    }
}
