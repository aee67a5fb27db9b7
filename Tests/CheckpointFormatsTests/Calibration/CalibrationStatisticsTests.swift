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

    @Test("a file that is neither an imatrix nor safetensors statistics is refused by name")
    func notCalibration() throws {
        let dir = try TemporaryDirectory(prefix: "stats-none")
        let path = try dir.write(Array("{}".utf8), to: "notes.json")
        #expect(throws: CalibrationError(file: path, message: "not a calibration file (expected an imatrix .dat or .gguf, or a .safetensors statistics file)")) {
            _ = try CalibrationStatistics.load(path: path)
        }
    }
}
