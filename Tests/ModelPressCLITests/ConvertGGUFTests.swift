import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// `modelpress convert --type` on the command line: refusals (exit 65 naming the tensor, 64 for
/// usage mistakes) that leave nothing behind, llama-quantize's shape fallback, determinism across
/// thread counts, the metadata llama-quantize adds, and GGUF → safetensors dequantization.
@Suite("modelpress convert --type (GGUF)")
struct ConvertGGUFTests {
    // MARK: Helpers

    /// Writes an F32 safetensors checkpoint of seeded values into `dir`; returns its path.
    @discardableResult
    static func writeInput(_ tensors: [(name: String, shape: [Int])], in dir: TemporaryDirectory,
                           name: String = "in.safetensors", seed: UInt64 = 5,
                           edit: (String, inout [Float]) -> Void = { _, _ in }) throws -> String {
        var rng = SeededGenerator(seed: seed)
        var entries: [TensorEntry] = []
        for t in tensors {
            var values = rng.gaussianFloats(count: Shape(t.shape).elementCount, standardDeviation: 0.02)
            edit(t.name, &values)
            entries.append(TensorEntry(name: t.name, tensor: try DenseTensor(floats: values, shape: Shape(t.shape))))
        }
        let path = dir.url(name)
        try SafetensorsWriter.write(try Checkpoint(entries: entries), to: path)
        return path
    }

    /// A legacy `.dat` imatrix with one entry per (name, weights), ncall 1.
    static func writeImatrix(_ entries: [(String, [Float])], in dir: TemporaryDirectory) throws -> String {
        func i32(_ v: Int) -> [UInt8] { withUnsafeBytes(of: Int32(v).littleEndian, Array.init) }
        var bytes = i32(entries.count)
        for (name, values) in entries {
            bytes += i32(name.utf8.count) + Array(name.utf8) + i32(1) + i32(values.count)
            for v in values { bytes += withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) }
        }
        bytes += i32(3) + i32(5) + Array("calib".utf8)
        return try dir.write(bytes, to: "imatrix.dat")
    }

    /// Exactly one stderr line, `modelpress: error: ...`, containing every string of `mentions`.
    private func expectError(_ result: CommandLineRunner.Result, status: Int32, mentioning mentions: [String],
                             sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!result.crashed && result.status == status, "\(result)", sourceLocation: sourceLocation)
        #expect(result.errorLines.count == 1, "stderr: \(result.standardError)", sourceLocation: sourceLocation)
        let line = result.errorLines.first ?? ""
        #expect(line.hasPrefix("modelpress: error: "), "\(line)", sourceLocation: sourceLocation)
        for m in mentions {
            #expect(line.contains(m), "error line does not name \(m): \(line)", sourceLocation: sourceLocation)
        }
        #expect(result.standardOutput.isEmpty, sourceLocation: sourceLocation)
    }

    private func expectSuccess(_ result: CommandLineRunner.Result, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!result.crashed && result.status == 0, "\(result)", sourceLocation: sourceLocation)
    }

    private func ggml(_ checkpoint: Checkpoint, _ name: String) throws -> GGMLTensor {
        guard case .ggml(let t)? = checkpoint[name]?.payload else { throw CheckpointExpectationError("'\(name)' is not a ggml tensor") }
        return t
    }

    // MARK: Rows that are not whole blocks

    @Test("a row that is not whole blocks exits 65 naming the tensor, and writes nothing")
    func rowNotWholeBlocks() throws {
        let dir = try TemporaryDirectory(prefix: "cli-rows")
        let input = try Self.writeInput([("blk.0.attn_norm.weight", [100]), ("blk.0.attn_q.weight", [4, 100])], in: dir)
        for type in ["Q4_K", "Q8_0", "q6_k"] {
            let result = try CommandLineRunner.run(["convert", input, "-o", dir.url("out.gguf"), "--type", type])
            expectError(result, status: 65, mentioning: ["'blk.0.attn_q.weight'", "row length 100", type.uppercased()])
            #expect(try dir.entries() == ["in.safetensors"], "nothing may be written for --type \(type)")
        }
    }

    /// (--type, row length, the type llama-quantize's `tensor_type_fallback` gives).
    static let fallbacks: [(type: String, rowLength: Int, expected: GGMLType)] = [
        ("Q4_K", 96, .q5_0), ("Q5_K", 96, .q5_1), ("Q6_K", 96, .q8_0), ("Q2_K", 96, .q4_0), ("Q3_K", 96, .q4_0),
        ("Q4_K", 100, .f16), ("Q8_0", 100, .f16), ("Q4_0", 48, .f16),
    ]

    @Test("--allow-fallback gives llama-quantize's fallback type (Q4_K → Q5_0, …, F16 when 32 does not divide the row)",
          arguments: 0..<fallbacks.count)
    func allowFallback(_ index: Int) throws {
        let (type, rowLength, expected) = Self.fallbacks[index]
        let dir = try TemporaryDirectory(prefix: "cli-fallback")
        let input = try Self.writeInput([("blk.0.attn_q.weight", [4, rowLength]), ("blk.0.ffn_up.weight", [2, 256])], in: dir)
        let output = dir.url("out.gguf")
        expectSuccess(try CommandLineRunner.run(["convert", input, "-o", output, "--type", type, "--allow-fallback", "--quiet"]))
        let written = try GGUFReader.open(path: output)
        #expect(written["blk.0.attn_q.weight"]?.encodingName == expected.name)
        #expect(written["blk.0.ffn_up.weight"]?.encodingName == type, "a row of 256 keeps \(type)")
        // The fallback tensor's bytes are what the codec gives for that type.
        let source = try denseTensor(try SafetensorsReader.open(path: input), "blk.0.attn_q.weight")
        if expected == .f16 {
            #expect(try denseTensor(written, "blk.0.attn_q.weight") == source.converted(to: .f16))
        } else {
            #expect(try ggml(written, "blk.0.attn_q.weight").storage == GGMLQuantization.quantize(source, name: "q", to: expected).storage)
        }
    }

    // MARK: Non-finite weights

    @Test("NaN or Inf in a weight exits 65 naming the tensor, and writes nothing",
          arguments: [(Float.nan, "Q8_0"), (.infinity, "Q4_K"), (-.infinity, "Q4_K_M"), (.nan, "Q2_K")])
    func nonFinite(_ bad: Float, _ type: String) throws {
        let dir = try TemporaryDirectory(prefix: "cli-nan")
        let input = try Self.writeInput([("blk.0.attn_q.weight", [2, 256]), ("blk.0.ffn_up.weight", [3, 256])], in: dir) { name, values in
            if name == "blk.0.ffn_up.weight" { values[256 + 37] = bad }
        }
        let result = try CommandLineRunner.run(["convert", input, "-o", dir.url("out.gguf"), "--type", type])
        expectError(result, status: 65, mentioning: ["'blk.0.ffn_up.weight'", "NaN or Inf", "row 1, column 37"])
        #expect(try dir.entries() == ["in.safetensors"])
    }

    // MARK: Usage errors (exit 64)

    @Test("unknown or unsupported --type exits 64", arguments: ["Q4_X", "IQ2_XXS", "Q8_1", "Q4_K_S", "", "q4_k_mm"])
    func unknownType(_ type: String) throws {
        let dir = try TemporaryDirectory(prefix: "cli-type")
        let input = try Self.writeInput([("w.weight", [2, 256])], in: dir)
        let result = try CommandLineRunner.run(["convert", input, "-o", dir.url("out.gguf"), "--type", type])
        expectError(result, status: 64, mentioning: ["unknown --type '\(type)'", "Q4_K_M"])
        #expect(try dir.entries() == ["in.safetensors"])
    }

    @Test("--type needs a .gguf output; --imatrix needs --type (exit 64)")
    func usageCombinations() throws {
        let dir = try TemporaryDirectory(prefix: "cli-usage")
        let input = try Self.writeInput([("w.weight", [2, 256])], in: dir)
        let imatrix = try Self.writeImatrix([("w.weight", [Float](repeating: 1, count: 256))], in: dir)
        let before = try dir.entries()
        expectError(try CommandLineRunner.run(["convert", input, "-o", dir.url("out.safetensors"), "--type", "Q8_0"]),
                    status: 64, mentioning: ["--type needs a .gguf output"])
        expectError(try CommandLineRunner.run(["convert", input, "-o", dir.url("out.gguf"), "--imatrix", imatrix]),
                    status: 64, mentioning: ["--imatrix needs --type"])
        expectError(try CommandLineRunner.run(["convert", input, "-o", dir.url("out.gguf"), "--type", "Q8_0", "--threads", "0"]),
                    status: 64, mentioning: ["--threads"])
        #expect(try dir.entries() == before)
    }

    // MARK: Already-quantized input

    @Test("requantizing an already-Q4_K GGUF to Q8_0 exits 65 naming the tensor; the same type is copied")
    func requantize() throws {
        let dir = try TemporaryDirectory(prefix: "cli-requant")
        let input = try Self.writeInput([("blk.0.attn_norm.weight", [256]), ("blk.0.attn_q.weight", [2, 256])], in: dir)
        let q4 = dir.url("q4.gguf")
        expectSuccess(try CommandLineRunner.run(["convert", input, "-o", q4, "--type", "Q4_K", "--quiet"]))
        let before = try dir.entries()
        let result = try CommandLineRunner.run(["convert", q4, "-o", dir.url("q8.gguf"), "--type", "Q8_0"])
        expectError(result, status: 65, mentioning: ["'blk.0.attn_q.weight'", "already Q4_K", "Q8_0"])
        #expect(try dir.entries() == before)
        // Asking for the type it already has copies the blocks unchanged.
        let again = dir.url("again.gguf")
        expectSuccess(try CommandLineRunner.run(["convert", q4, "-o", again, "--type", "Q4_K", "--quiet"]))
        #expect(try ggml(GGUFReader.open(path: again), "blk.0.attn_q.weight").storage == ggml(GGUFReader.open(path: q4), "blk.0.attn_q.weight").storage)
    }

    // MARK: Determinism

    @Test("--threads 1 and --threads 2 give byte-identical files (Q4_K with an imatrix, Q8_0, Q4_K_M)")
    func threadsDoNotChangeBytes() throws {
        let dir = try TemporaryDirectory(prefix: "cli-threads")
        let tensors = [("blk.0.attn_norm.weight", [512]), ("blk.0.attn_q.weight", [9, 512]), ("blk.0.ffn_down.weight", [7, 256])]
        let input = try Self.writeInput(tensors, in: dir)
        var rng = SeededGenerator(seed: 99)
        let weights = (0..<512).map { _ in Float(rng.nextUnitDouble() * 4 + 0.01) }
        let imatrix = try Self.writeImatrix([("blk.0.attn_q.weight", weights), ("blk.0.ffn_down.weight", Array(weights.prefix(256)))], in: dir)
        for (type, matrix) in [("Q4_K", Optional(imatrix)), ("Q8_0", nil), ("Q4_K_M", imatrix)] {
            var outputs: [[UInt8]] = []
            for threads in ["1", "2"] {
                let output = dir.url("\(type)-t\(threads).gguf")
                expectSuccess(try CommandLineRunner.run(["convert", input, "-o", output, "--type", type, "--threads", threads, "--quiet"]
                                                        + (matrix.map { ["--imatrix", $0] } ?? [])))
                outputs.append(try TemporaryDirectory.read(output))
            }
            #expect(outputs[0] == outputs[1], "--type \(type): --threads 1 and 2 differ")
        }
        // The imatrix is used: without it the Q4_K bytes differ, and its provenance is recorded.
        let plain = dir.url("plain.gguf")
        expectSuccess(try CommandLineRunner.run(["convert", input, "-o", plain, "--type", "Q4_K", "--threads", "2", "--quiet"]))
        let weighted = try GGUFReader.open(path: dir.url("Q4_K-t2.gguf"))
        #expect(try ggml(weighted, "blk.0.attn_q.weight").storage != ggml(GGUFReader.open(path: plain), "blk.0.attn_q.weight").storage)
        #expect(weighted.metadataValue("quantize.imatrix.file") == .gguf(.string(imatrix)))
        #expect(weighted.metadataValue("quantize.imatrix.dataset") == .gguf(.string("calib")))
        #expect(weighted.metadataValue("quantize.imatrix.entries_count") == .gguf(.uint32(2)))
        #expect(weighted.metadataValue("quantize.imatrix.chunks_count") == .gguf(.uint32(3)))
        // And the bytes are the codec's own with those weights.
        let source = try denseTensor(try SafetensorsReader.open(path: input), "blk.0.attn_q.weight")
        #expect(try ggml(weighted, "blk.0.attn_q.weight").storage
                == GGMLQuantization.quantize(source, name: "q", to: .q4_K, importance: weights).storage)
    }

    // MARK: What the output holds

    @Test("1-D norms stay F32; general.quantization_version = 2 (u32) and general.file_type are added at the end",
          arguments: [("Q4_K", UInt32(15)), ("Q8_0", 7), ("Q5_1", 9), ("F16", 1), ("Q4_K_M", 15)])
    func normsAndMetadata(_ type: String, _ fileType: UInt32) throws {
        let dir = try TemporaryDirectory(prefix: "cli-meta")
        let input = try Self.writeInput([("blk.0.attn_norm.weight", [256]), ("blk.0.attn_q.weight", [2, 256]),
                                         ("output_norm.weight", [256])], in: dir)
        let output = dir.url("out.gguf")
        expectSuccess(try CommandLineRunner.run(["convert", input, "-o", output, "--type", type, "--quiet"]))
        let source = try SafetensorsReader.open(path: input)
        let written = try GGUFReader.open(path: output)
        for norm in ["blk.0.attn_norm.weight", "output_norm.weight"] {
            #expect(try denseTensor(written, norm) == denseTensor(source, norm), "\(norm) must stay F32, unchanged")
        }
        let expectedWeightType = type == "Q4_K_M" ? "Q4_K" : type
        #expect(written["blk.0.attn_q.weight"]?.encodingName == expectedWeightType)
        let keys = written.metadata.map(\.key)
        #expect(Array(keys.suffix(2)) == ["general.quantization_version", "general.file_type"], "\(keys)")
        #expect(written.metadataValue("general.quantization_version") == .gguf(.uint32(2)))
        #expect(written.metadataValue("general.file_type") == .gguf(.uint32(fileType)))
    }

    @Test("GGUF → safetensors dequantizes block tensors (values equal GGMLQuantization.dequantize), copies the rest")
    func ggufToSafetensors() throws {
        let dir = try TemporaryDirectory(prefix: "cli-deq")
        let input = try Self.writeInput([("blk.0.attn_norm.weight", [256]), ("blk.0.attn_q.weight", [3, 256]),
                                         ("blk.0.ffn_down.weight", [2, 512])], in: dir)
        let gguf = dir.url("q.gguf")
        expectSuccess(try CommandLineRunner.run(["convert", input, "-o", gguf, "--type", "Q4_K_M", "--quiet"]))
        let quantized = try GGUFReader.open(path: gguf)
        for dtype in ["f32", "bf16"] {
            let output = dir.url("back-\(dtype).safetensors")
            expectSuccess(try CommandLineRunner.run(["convert", gguf, "-o", output, "--dtype", dtype, "--quiet"]))
            let back = try SafetensorsReader.open(path: output)
            #expect(back.entries.map(\.name) == quantized.entries.map(\.name))
            for name in ["blk.0.attn_q.weight", "blk.0.ffn_down.weight"] {
                let t = try ggml(quantized, name)
                let dense = try denseTensor(back, name)
                let expected = try DenseTensor(floats: GGMLQuantization.dequantize(t, name: name), shape: t.shape)
                #expect(dense.shape == t.shape && dense.dtype == (dtype == "f32" ? .f32 : .bf16))
                #expect(dense == (try expected.converted(to: dense.dtype)), "\(name) (\(dtype))")
            }
            let norm = try denseTensor(back, "blk.0.attn_norm.weight")
            #expect(norm == (try denseTensor(quantized, "blk.0.attn_norm.weight").converted(to: norm.dtype)))
        }
        // The K-quant tensors really were block tensors (so the check above is not a plain copy).
        #expect(quantized["blk.0.attn_q.weight"]?.encodingName == "Q4_K" && quantized["blk.0.ffn_down.weight"]?.encodingName == "Q6_K")
    }
}
