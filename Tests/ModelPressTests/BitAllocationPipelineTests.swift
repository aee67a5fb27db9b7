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
        #expect(try diagnostics("allocate.bits min=5 max=3 granularity=tensor min=1 targets=\"*q_proj*\"\nquantize.int bits=auto targets=\"*q_proj*\"\n").isEmpty == false)
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
}
