import Foundation
import Testing
import TensorCore
import Reports
@testable import ModelPress
import TestSupport

/// Golden reports: a fixed recipe on the fixed test model must keep giving the committed report
/// (Tests/Fixtures/reports, written by `modelpress compress --report` when the recipe's output was
/// checked against the numpy/bitsandbytes references). Names, shapes, encodings and byte counts
/// must match exactly; the float metrics to 1e-9 relative (their last bits depend on summation order).
@Suite("Golden reports")
struct GoldenReportTests {
    static let root = CompressionPipelineTests.root

    static func close(_ a: Double, _ b: Double) -> Bool {
        if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
        if a.isInfinite || b.isInfinite { return a == b }
        return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-30)
    }

    @Test("compressing pico-llama gives the committed report", arguments: ["w4-group128", "nf4"])
    func golden(_ recipe: String) throws {
        let dir = try TemporaryDirectory(prefix: "golden")
        var pipeline = CompressionPipeline(inputPath: CompressionPipelineTests.pico,
                                           recipePath: Self.root.appendingPathComponent("Recipes/\(recipe).recipe").path)
        pipeline.threadCount = 3
        let report = try pipeline.compress(outputPath: dir.url("out.safetensors"))
        let golden = try CompressionReport.read(path: Self.root.appendingPathComponent("Tests/Fixtures/reports/pico-llama-\(recipe).report.json").path)
        #expect(report.totals.parameterCount == golden.totals.parameterCount)
        #expect(report.totals.inputByteCount == golden.totals.inputByteCount)
        #expect(report.totals.outputByteCount == golden.totals.outputByteCount)
        #expect(report.tensors.count == golden.tensors.count)
        for (ours, theirs) in zip(report.tensors, golden.tensors) {
            #expect(ours.name == theirs.name)
            #expect(ours.shape == theirs.shape && ours.inputDType == theirs.inputDType && ours.encoding == theirs.encoding, "\(ours.name)")
            #expect(ours.inputByteCount == theirs.inputByteCount && ours.outputByteCount == theirs.outputByteCount, "\(ours.name)")
            for (a, b, what) in [(ours.bitsPerWeight, theirs.bitsPerWeight, "bits per weight"), (ours.sparsity, theirs.sparsity, "sparsity"),
                                 (ours.relativeError, theirs.relativeError, "relative error"), (ours.sqnrDecibels, theirs.sqnrDecibels, "SQNR"),
                                 (ours.maxAbsoluteError, theirs.maxAbsoluteError, "max abs error"), (ours.cosine, theirs.cosine, "cosine")] {
                #expect(Self.close(a, b), "\(ours.name) \(what): \(a) vs golden \(b)")
            }
        }
    }
}
