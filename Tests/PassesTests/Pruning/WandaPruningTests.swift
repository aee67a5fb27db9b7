import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport
@testable import Passes

@Suite("prune.wanda")
struct WandaPruningTests {
    typealias S = PruningTestSupport

    /// Calibration statistics holding `w.weight.act_sq`.
    static func statistics(_ squares: [Float], in dir: TemporaryDirectory) throws -> CalibrationStatistics {
        let path = dir.url("calibration.safetensors")
        try SafetensorsWriter.write(try Checkpoint(entries: [try S.entry(squares, [squares.count], name: "w.weight.act_sq")]), to: path)
        return try CalibrationStatistics.load(path: path)
    }

    @Test("score |w|·‖x_j‖, the lowest of each row: a hand-worked case")
    func handWorked() throws {
        let dir = try TemporaryDirectory()
        let statistics = try Self.statistics([1, 100, 1, 4], in: dir)
        // Row 0 scores: 1·1, 0.2·10, 0.5·1, 3·2 = 1, 2, 0.5, 6 → drop columns 2 and 0.
        // Row 1 scores: 0.1, 1, 4, 0.5 → drop columns 0 and 3.
        var entry = try S.entry([1, 0.2, 0.5, 3, -0.1, 0.1, 4, 0.25], [2, 4])
        try S.pass("prune.wanda sparsity=50%", shape: Shape([2, 4])).apply(to: &entry, context: PassContext(calibration: statistics))
        #expect(try S.values(entry) == [0, 0.2, 0, 3, 0, 0.1, 4, 0])
        #expect(entry.sparsity == .unstructured)
    }

    @Test("every row loses exactly round(p·columns); with equal act_sq it is per-row magnitude pruning")
    func perRow() throws {
        let dir = try TemporaryDirectory()
        var rng = SeededGenerator(seed: 8)
        let w = rng.gaussianFloats(count: 32 * 96)
        let uneven = try Self.statistics((0..<96).map { Float(1 + $0 % 5) }, in: dir)
        var entry = try S.entry(w, [32, 96])
        try S.pass("prune.wanda sparsity=30%", shape: Shape([32, 96])).apply(to: &entry, context: PassContext(calibration: uneven))
        let p = try S.values(entry)
        for r in 0..<32 { #expect(p[(r * 96)..<((r + 1) * 96)].filter { $0 == 0 }.count == 29) }   // round(0.3·96) = 28.8 → 29

        let dir2 = try TemporaryDirectory()
        let flat = try Self.statistics([Float](repeating: 2, count: 96), in: dir2)
        var a = try S.entry(w, [32, 96])
        try S.pass("prune.wanda pattern=2:4", shape: Shape([32, 96])).apply(to: &a, context: PassContext(calibration: flat))
        var b = try S.entry(w, [32, 96])
        try S.pass("prune.magnitude pattern=2:4", shape: Shape([32, 96])).apply(to: &b, context: PassContext())
        #expect(try S.values(a) == S.values(b))
        #expect(a.sparsity == .nOfM(kept: 2, group: 4))
    }
}
