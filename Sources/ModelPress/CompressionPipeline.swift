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
/// report zero error. Outputs: safetensors, with quantized tensors in the compressed-tensors layout.
public struct CompressionPipeline: Sendable {
    public let inputPath: String
    public let recipePath: String
    public let overrides: [(name: String, text: String)]
    public var threadCount = 1
    public var registry = PassRegistry.builtIn
    /// Called after each tensor is compressed: (tensors done, tensors to do, bytes of input done, name).
    public var progress: (@Sendable (Int, Int, Int, String) -> Void)?

    public init(inputPath: String, recipePath: String, overrides: [(name: String, text: String)] = []) {
        self.inputPath = inputPath
        self.recipePath = recipePath
        self.overrides = overrides
    }

    /// The bound steps and the names each selects (what `modelpress check` prints).
    public func check() throws -> [(step: String, location: SourceLocation, tensors: [String])] {
        let (checkpoint, steps) = try bind()
        return steps.map { step in (type(of: step.pass).name, step.location, step.selected.map { checkpoint.entries[$0].name }) }
    }

    private func bind() throws -> (Checkpoint, [BoundStep]) {
        let checkpoint = try CheckpointReader.open(path: inputPath)
        let recipe = try RecipeParser.parse(path: recipePath, overrides: overrides)
        let steps = try registry.bind(recipe, manifest: CheckpointManifest(checkpoint))
        return (checkpoint, steps)
    }

    /// Compresses to `outputPath` (`.safetensors`, or `.gguf` when every tensor ends up dense or in a
    /// ggml block type) and returns the report.
    public func compress(outputPath: String) throws -> CompressionReport {
        guard outputPath.hasSuffix(".safetensors") || outputPath.hasSuffix(".gguf") else {
            throw UsageError("\(outputPath): compress writes .safetensors or .gguf (zstd outputs are not yet supported)")
        }
        try UsageError.refuseOverwriting(input: inputPath, output: outputPath)
        var (checkpoint, steps) = try bind()
        let original = checkpoint
        let context = PassContext(threadCount: threadCount)
        let work = steps.reduce(0) { $0 + $1.selected.count }
        var done = 0, bytesDone = 0
        for step in steps {
            for i in step.selected {
                var entry = checkpoint.entries[i]
                try step.pass.apply(to: &entry, context: context)
                checkpoint.replacePayload(at: i, with: entry.payload)
                done += 1
                bytesDone += original.entries[i].byteCount
                progress?(done, work, bytesDone, entry.name)
            }
        }
        if outputPath.hasSuffix(".gguf"), let entry = checkpoint.entries.first(where: { if case .quantized = $0.payload { true } else { false } }) {
            throw UsageError("tensor '\(entry.name)' is \(entry.encodingName): writing integer/FP8 tensors to GGUF is not yet supported; use quantize.ggml or a .safetensors output")
        }
        // Writing only reads the checkpoint, so it runs as the report's first work item: one worker
        // writes while the others measure tensors (a write error still comes first).
        let compressed = checkpoint
        return try ReportBuilder.report(original: original, compressed: compressed, input: inputPath, output: outputPath,
                                        recipe: recipePath, threadCount: threadCount) {
            if outputPath.hasSuffix(".gguf") {
                try GGUFWriter.write(compressed, to: outputPath)
            } else {
                try SafetensorsWriter.write(compressed, to: outputPath)
            }
        }
    }
}
