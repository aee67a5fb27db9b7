import Foundation
import TensorCore
import CheckpointFormats
import Recipes
import Reports
import Passes

/// `modelpress sweep`: compresses INPUT once per point of a `SweepPlan`, each with the recipe's
/// variables set to the point's values, writing `DIR/<stem>.<ext>` and `DIR/<stem>.report.json`.
///
/// `DIR/sweep.json` (the manifest) records the input, the recipe (path and text), the calibration
/// file and every finished point with its wall time. A point whose manifest entry and report exist
/// is skipped, so an interrupted sweep resumes; a folder holding another sweep (a different input,
/// recipe text, calibration or set of variables) is refused and nothing in it is touched.
public struct SweepRunner: Sendable {
    public let inputPath: String
    public let recipePath: String
    public let plan: SweepPlan
    public let directory: String
    public var calibrationPath: String?
    public var jobs = 1
    public var threadCount = 1
    public var keepOutputs = true
    /// Called when a point starts, finishes or is skipped (a line for stderr).
    public var progress: (@Sendable (String) -> Void)?

    public static let manifestName = "sweep.json"

    public init(inputPath: String, recipePath: String, plan: SweepPlan, directory: String) {
        self.inputPath = inputPath
        self.recipePath = recipePath
        self.plan = plan
        self.directory = directory
    }

    /// One point's outcome.
    public struct PointResult: Sendable {
        public let point: SweepPlan.Point
        public let report: CompressionReport
        public let seconds: Double
        public let skipped: Bool
    }

    /// Runs (or resumes) the sweep; returns every point's result in plan order.
    public func run() throws -> [PointResult] {
        try plan.check(recipePath: recipePath)
        let recipeText = try String(contentsOfFile: recipePath, encoding: .utf8)
        let identity = SweepManifest.Identity(input: inputPath, recipe: recipePath, recipeText: recipeText,
                                              calibration: calibrationPath, variables: plan.variables.map(\.name))
        let manifest = try SweepManifest.open(directory: directory, identity: identity)
        let points = plan.points
        let extensionName = try outputExtension()
        let state = SweepState(manifest: manifest, count: points.count)
        var queue: [Int] = []
        for (i, point) in points.enumerated() {
            if let done = manifest.entry(for: point), let report = try? CompressionReport.read(path: directory + "/" + done.report) {
                state.results[i] = PointResult(point: point, report: report, seconds: done.seconds, skipped: true)
                progress?("sweep: \(point.label): done before, skipped")
            } else {
                queue.append(i)
            }
        }
        let pending = queue
        let workers = max(1, min(jobs, pending.count))
        let perPoint = max(1, threadCount / workers)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var k = worker
            while k < pending.count {
                let i = pending[k]
                let point = points[i]
                k += workers
                if state.failed { return }
                progress?("sweep: \(point.label): compressing")
                do {
                    let output = point.stem + extensionName, reportName = point.stem + ".report.json"
                    var pipeline = CompressionPipeline(inputPath: inputPath, recipePath: recipePath,
                                                       overrides: point.values.map { ($0.name, $0.value) })
                    pipeline.threadCount = perPoint
                    pipeline.calibrationPath = calibrationPath
                    let start = ContinuousClock.now
                    let report = try pipeline.compress(outputPath: directory + "/" + output)
                    let elapsed = ContinuousClock.now - start
                    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
                    try report.write(to: directory + "/" + reportName)
                    if !keepOutputs { try? FileManager.default.removeItem(atPath: directory + "/" + output) }
                    try state.finish(i, PointResult(point: point, report: report, seconds: seconds, skipped: false),
                                     output: keepOutputs ? output : nil, report: reportName)
                    progress?("sweep: \(point.label): done in \(String(format: "%.2f", seconds)) s")
                } catch {
                    state.fail(error)
                }
            }
        }
        if let failure = state.failure { throw failure }
        return state.results.map { $0! }
    }

    /// `.gguf` when the recipe asks for GGUF or quantizes to ggml types, else `.safetensors`; `.zst`
    /// added when it asks for zstd.
    func outputExtension() throws -> String {
        let overrides = plan.points.first.map { $0.values.map { ($0.name, $0.value) } } ?? []
        let recipe = try RecipeParser.parse(path: recipePath, overrides: overrides)
        var directives = RecipeDirectives()
        for step in recipe.steps where RecipeDirectives.names.contains(step.name) { _ = directives.read(step) }
        let gguf = recipe.steps.contains { $0.name == GGMLQuantizationPass.name } || directives.outputFormat?.name == "gguf"
        return (gguf ? ".gguf" : ".safetensors") + (directives.zstdLevel != nil ? ".zst" : "")
    }
}

/// What the workers of a sweep share, behind one lock: the manifest (saved after every point), the
/// results and the first failure.
final class SweepState: @unchecked Sendable {
    private let lock = NSLock()
    private var manifest: SweepManifest
    var results: [SweepRunner.PointResult?]
    private(set) var failure: Error?

    init(manifest: SweepManifest, count: Int) {
        self.manifest = manifest
        results = [SweepRunner.PointResult?](repeating: nil, count: count)
    }

    var failed: Bool { lock.withLock { failure != nil } }

    func fail(_ error: Error) { lock.withLock { if failure == nil { failure = error } } }

    func finish(_ i: Int, _ result: SweepRunner.PointResult, output: String?, report: String) throws {
        try lock.withLock {
            manifest.record(result.point, output: output, report: report, seconds: result.seconds)
            try manifest.save()
            results[i] = result
        }
    }
}

extension SweepRunner {
    /// Writes `summary.csv`, `summary.md`, `pareto.svg` and `layers.svg` into the sweep folder.
    public func writeSummary(_ summary: SweepSummary) throws {
        for (name, text) in [("summary.csv", summary.csv()), ("summary.md", summary.markdown()),
                             ("pareto.svg", SweepCharts.pareto(summary)), ("layers.svg", SweepCharts.layers(summary))] {
            let writer = try AtomicFileWriter(destination: directory + "/" + name)
            try writer.write(Array(text.utf8))
            try writer.commit()
        }
    }
}
