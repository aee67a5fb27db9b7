import TensorCore
import CheckpointFormats
import Recipes
import Reports
import Passes

/// `modelpress compress`: load → parse the recipe → bind (all problems reported before any weight is
/// read) → apply each step to the tensors it selects, tensor by tensor → write → report.
///
/// The report compares every output tensor with its input: `relative_error = ‖W − W'‖_F / ‖W‖_F`,
/// SQNR, max abs error, cosine, sparsity, bytes in and out. Tensors no step selects are copied and
/// report zero error. Outputs: safetensors, with quantized tensors in the compressed-tensors layout,
/// or GGUF, with ggml block types as they are and other quantized tensors as `GGUFQuantizedLayout`
/// describes.
public struct CompressionPipeline: Sendable {
    public let inputPath: String
    public let recipePath: String
    public let overrides: [(name: String, text: String)]
    public var threadCount = 1
    public var registry = PassRegistry.builtIn
    /// Called after each tensor is compressed: (tensors done, tensors to do, bytes of input done, name).
    public var progress: (@Sendable (Int, Int, Int, String) -> Void)?
    /// Calibration statistics from the command line (`--calibration`); they replace the recipe's
    /// `calibration` step.
    public var calibrationPath: String?
    /// Called with notes that do not stop the run (weights the calibration file does not cover, ...).
    public var warning: (@Sendable (String) -> Void)?
    /// Called with what planning steps decided (`allocate.bits`: the bits per weight reached, ...).
    public var note: (@Sendable (String) -> Void)?

    /// Recipe text to use instead of reading `recipePath` (which then only names it in messages and
    /// reports; relative paths in it are taken from the current folder). `merge-lora` builds its
    /// recipe this way.
    public var recipeText: String?

    public init(inputPath: String, recipePath: String, overrides: [(name: String, text: String)] = []) {
        self.inputPath = inputPath
        self.recipePath = recipePath
        self.overrides = overrides
    }

    /// The bound steps and the names each selects (what `modelpress check` prints).
    public func check() throws -> [(step: String, location: SourceLocation, tensors: [String])] {
        let (checkpoint, bound, _) = try bind()
        return bound.steps.map { step in (type(of: step.pass).name, step.location, step.selected.map { checkpoint.entries[$0].name }) }
    }

    /// Reads the checkpoint, the recipe and the calibration file, and checks everything that can be
    /// checked without reading a weight: all problems are thrown together.
    private func bind() throws -> (Checkpoint, BoundRecipe, CalibrationStatistics?) {
        let checkpoint = try CheckpointReader.open(path: inputPath)
        let recipe = try recipeText.map { try RecipeParser.parse(text: $0, file: recipePath, overrides: overrides) }
            ?? RecipeParser.parse(path: recipePath, overrides: overrides)
        let manifest = CheckpointManifest(checkpoint)
        let bound = try registry.bindRecipe(recipe, manifest: manifest)
        guard let path = calibrationPath ?? bound.directives.calibration?.path else {
            let needing = bound.steps.filter { $0.pass.requiresCalibration }
            if !needing.isEmpty {
                throw RecipeDiagnostics(needing.map { RecipeDiagnostic($0.location, "\(type(of: $0.pass).name) needs calibration statistics: add a 'calibration stats=FILE' step or --calibration FILE") })
            }
            return (checkpoint, bound, nil)
        }
        let statistics = try CalibrationStatistics.load(path: path)
        var problems: [RecipeDiagnostic] = []
        for step in bound.steps where type(of: step.pass).usesCalibration || step.pass.requiresCalibration {
            for i in step.selected {
                let entry = manifest.entries[i]
                if let problem = step.pass.calibrationProblem(with: entry, statistics: statistics) {
                    problems.append(RecipeDiagnostic(step.location, "\(type(of: step.pass).name): tensor '\(entry.name)': \(problem)"))
                } else if !statistics.covers(entry.name) {
                    warning?("\(path): no statistics for \(entry.name); \(type(of: step.pass).name) quantizes it without them")
                }
            }
        }
        if !problems.isEmpty { throw RecipeDiagnostics(problems) }
        return (checkpoint, bound, statistics)
    }

    /// Compresses to `outputPath` (`.safetensors` or `.gguf`, either with `.zst`) and returns the report.
    public func compress(outputPath: String) throws -> CompressionReport {
        var output = try CheckpointOutput(path: outputPath)
        try UsageError.refuseOverwriting(input: inputPath, output: outputPath)
        var (checkpoint, bound, calibration) = try bind()
        let steps = bound.steps
        let directives = bound.directives
        if let (format, location) = directives.outputFormat, format != output.format.rawValue {
            throw UsageError("\(location): error: the recipe asks for \(format) output, but -o is \(outputPath)")
        }
        if let (level, location) = directives.zstdLevel {
            guard output.zstdLevel != nil else {
                throw UsageError("\(location): error: the recipe asks for zstd output; name the output \(outputPath).zst")
            }
            output.zstdLevel = Int32(level)
        }
        if let layout = directives.zstdLayout { output.layout = layout }
        let original = checkpoint
        var context = PassContext(threadCount: threadCount, calibration: calibration, outputFormat: output.format == .gguf ? .gguf : .safetensors)
        context.note = note
        // Streaming: a tensor is final after the last step that selects it. Its stored form goes to
        // the writer (which spools what it cannot map) and its report record is measured (beside the
        // next tensor's work when there are threads to spare), then the in-memory result is dropped;
        // a result a later step rewrites waits in a spool file.
        var lastStep = [Int?](repeating: nil, count: checkpoint.count)
        for (s, step) in steps.enumerated() { for i in step.selected { lastStep[i] = s } }
        let writer = StreamingCheckpointWriter(format: output.format == .gguf ? .gguf : .safetensors, names: original.entries.map(\.name),
                                               metadata: original.metadata, destination: outputPath)
        let intermediates = TensorSpool(destination: outputPath)
        let formats = ReportBuilder.storageFormats(input: inputPath, output: outputPath)
        let recorder = BackgroundRecorder(count: checkpoint.count, background: threadCount > 1)
        let recordThreads = threadCount > 1 ? 1 : threadCount
        let statistics = calibration
        func finish(_ i: Int, _ entry: TensorEntry) throws {
            let before = original.entries[i]
            guard entry.shape.elementCount == before.shape.elementCount else {
                throw ReportBuildError.shapeChanged(tensor: before.name, from: before.shape.dimensions, to: entry.shape.dimensions)
            }
            try writer.add(entry, at: i)
            recorder.measure(i) {
                try ReportBuilder.record(before: before, after: entry, formats: formats, calibration: statistics, threadCount: recordThreads)
            } after: {
                before.releaseResidentPages()
                entry.releaseResidentPages()
            }
            checkpoint.replace(at: i, with: before)
        }
        for i in checkpoint.entries.indices where lastStep[i] == nil { try finish(i, checkpoint.entries[i]) }
        let work = steps.reduce(0) { $0 + (type(of: $1.pass).rewritesTensors ? $1.selected.count : 0) }
        var done = 0, bytesDone = 0
        for (s, step) in steps.enumerated() {
            context.location = step.location
            try step.pass.plan(checkpoint, selected: step.selected, consumers: step.consumers, context: &context)
            context.location = nil
            guard type(of: step.pass).rewritesTensors else {
                for i in step.selected where lastStep[i] == s { try finish(i, checkpoint.entries[i]) }
                continue
            }
            for i in step.selected {
                var entry = checkpoint.entries[i]
                try step.pass.apply(to: &entry, context: context)
                if lastStep[i] == s {
                    try finish(i, entry)   // gives the input's pages back once measured
                } else {
                    checkpoint.entries[i].releaseResidentPages()
                    checkpoint.replace(at: i, with: try intermediates.store(entry))
                }
                done += 1
                bytesDone += original.entries[i].byteCount
                progress?(done, work, bytesDone, entry.name)
            }
        }
        let report = CompressionReport(version: ModelPressVersion.string, input: inputPath, output: outputPath, recipe: recipePath,
                                       tensors: try recorder.records())
        try output.write(threadCount: threadCount) { path in try writer.write(to: path) }
        return report
    }
}
