import Foundation
import Testing
import TensorCore
@testable import CheckpointFormats
import TestSupport

@Suite("Calibration statistics")
struct CalibrationStatisticsTests {
    static func write(_ tensors: [(String, DenseTensor)], in dir: TemporaryDirectory) throws -> String {
        let path = dir.url("stats.safetensors")
        try SafetensorsWriter.write(try Checkpoint(entries: tensors.map { TensorEntry(name: $0.0, tensor: $0.1) }), to: path)
        return path
    }

    @Test("HF and llama.cpp GGUF names map both ways; other names have no alias")
    func aliases() {
        #expect(LlamaTensorNames.aliases(of: "model.layers.12.self_attn.o_proj.weight") == ["blk.12.attn_output.weight"])
        #expect(LlamaTensorNames.aliases(of: "blk.3.ffn_down.weight") == ["model.layers.3.mlp.down_proj.weight"])
        #expect(LlamaTensorNames.aliases(of: "model.embed_tokens.weight") == ["token_embd.weight"])
        #expect(LlamaTensorNames.aliases(of: "output.weight") == ["lm_head.weight"])
        #expect(LlamaTensorNames.aliases(of: "model.layers.x.mlp.up_proj.weight").isEmpty)
        #expect(LlamaTensorNames.aliases(of: "blk.0.unknown.weight").isEmpty)
        #expect(LlamaTensorNames.aliases(of: "encoder.weight").isEmpty)
    }

    @Test("act_sq is read as is; a Hessian gives its diagonal; act_sq wins when both are there")
    func safetensorsStatistics() throws {
        let dir = try TemporaryDirectory(prefix: "stats")
        let hessian = try DenseTensor(floats: [4, 1, 9, 1, 5, 2, 9, 2, 6], shape: Shape([3, 3]))
        let path = try Self.write([("a.weight.hessian", hessian),
                                   ("b.weight.act_sq", try DenseTensor(floats: [0.5, 0], shape: Shape([2]))),
                                   ("b.weight.hessian", hessian)], in: dir)
        let statistics = try CalibrationStatistics.load(path: path)
        #expect(try statistics.activationSquares(for: "a.weight") == [4, 5, 6])
        #expect(try statistics.activationSquares(for: "b.weight") == [0.5, 0])
        #expect(try statistics.activationSquares(for: "c.weight") == nil)
    }

    @Test("malformed statistics name the file and the tensor", arguments: [
        ("w.act_sq", [Float](repeating: 1, count: 4), [2, 2], "'w.act_sq' must be a 1-D float tensor"),
        ("w.hessian", [Float](repeating: 1, count: 6), [2, 3], "'w.hessian' must be a square 2-D float tensor"),
        ("w.act_sq", [1, -1], [2], "statistics for 'w' hold a negative or non-finite value (element 1)"),
        ("w.act_sq", [Float.nan, 1], [2], "statistics for 'w' hold a negative or non-finite value (element 0)"),
    ])
    func malformed(name: String, values: [Float], shape: [Int], message: String) throws {
        let dir = try TemporaryDirectory(prefix: "stats-bad")
        let path = try Self.write([(name, try DenseTensor(floats: values, shape: Shape(shape)))], in: dir)
        let statistics = try CalibrationStatistics.load(path: path)
        #expect(throws: CalibrationError(file: path, message: message)) { _ = try statistics.activationSquares(for: "w") }
    }

    @Test("per-sample gradients are read as stored, under the HF or llama.cpp name; gradients alone cover a weight")
    func gradients() throws {
        let dir = try TemporaryDirectory(prefix: "stats-grads")
        let values: [Float] = [1, -2, 0.5, 0, 3, 0x1p-20]  // 2 samples of 3 elements; F16 keeps them exactly
        let path = try Self.write([("output.weight.grads", try DenseTensor(floats: values, shape: Shape([2, 3]), dtype: .f16))], in: dir)
        let statistics = try CalibrationStatistics.load(path: path)
        for name in ["lm_head.weight", "output.weight"] {
            let read = try #require(try statistics.gradients(for: name, elementCount: 3), "\(name)")
            #expect(read.samples == 2 && read.values == values, "\(name)")
            #expect(statistics.covers(name), "\(name)")
        }
        #expect(try statistics.activationSquares(for: "lm_head.weight") == nil)
        #expect(try statistics.hessian(for: "lm_head.weight") == nil)
        #expect(try statistics.gradients(for: "model.norm.weight", elementCount: 3) == nil)
        #expect(!statistics.covers("model.norm.weight"))

        // act_sq and Hessians have no gradients.
        let other = try Self.write([("w.act_sq", try DenseTensor(floats: [1, 2, 3], shape: Shape([3])))], in: dir)
        #expect(try CalibrationStatistics.load(path: other).gradients(for: "w", elementCount: 3) == nil)
    }

    static let notGradients = "'w.grads' must be a 2-D float tensor [samples, elements of the weight]"
    /// (dtype, values, shape, the weight's element count, message): one case per error of `gradients(for:elementCount:)`.
    static let malformedGradientCases: [(DType, [Float], [Int], Int, String)] = [
        (.f32, [Float](repeating: 1, count: 4), [4], 4, notGradients),
        (.f32, [Float](repeating: 1, count: 8), [2, 2, 2], 4, notGradients),
        (.i32, [Float](repeating: 1, count: 8), [2, 4], 4, notGradients),
        (.f32, [Float](repeating: 1, count: 6), [2, 3], 4, "'w.grads' has 3 values per sample, but 'w' has 4 elements"),
        (.f32, [], [0, 4], 4, "'w.grads' holds no samples"),
        (.f32, [0, 0, 0, 0, 0, 0, .nan, 0], [2, 4], 4, "'w.grads' holds a non-finite value (sample 1, element 2)"),
        (.f16, [0, 70000, 0, 0], [1, 4], 4, "'w.grads' holds a non-finite value (sample 0, element 1)"),  // F16 overflow: +inf
        (.bf16, [0, 0, 0, -.infinity], [1, 4], 4, "'w.grads' holds a non-finite value (sample 0, element 3)"),
    ]

    @Test("malformed gradients name the file and the tensor", arguments: malformedGradientCases)
    func malformedGradients(dtype: DType, values: [Float], shape: [Int], elementCount: Int, message: String) throws {
        let dir = try TemporaryDirectory(prefix: "stats-bad-grads")
        let tensor = dtype == .i32
            ? try DenseTensor(dtype: .i32, shape: Shape(shape), storage: ByteStorage([UInt8](repeating: 0, count: 4 * values.count)))
            : try DenseTensor(floats: values, shape: Shape(shape), dtype: dtype)
        let path = try Self.write([("w.grads", tensor)], in: dir)
        let statistics = try CalibrationStatistics.load(path: path)
        #expect(statistics.covers("w"))
        #expect(throws: CalibrationError(file: path, message: message)) { _ = try statistics.gradients(for: "w", elementCount: elementCount) }
    }

    @Test("a file that is neither an imatrix nor safetensors statistics is refused by name")
    func notCalibration() throws {
        let dir = try TemporaryDirectory(prefix: "stats-none")
        let path = try dir.write(Array("{}".utf8), to: "notes.json")
        #expect(throws: CalibrationError(file: path, message: "not a calibration file (expected an imatrix .dat or .gguf, or a .safetensors statistics file)")) {
            _ = try CalibrationStatistics.load(path: path)
        }
    }
}
