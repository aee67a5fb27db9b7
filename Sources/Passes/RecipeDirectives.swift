import CheckpointFormats
import Recipes

/// The recipe steps the pipeline handles itself rather than a pass:
///
/// ```
/// calibration stats=calib.safetensors     # or a llama.cpp imatrix (.dat or .gguf)
/// output      format=gguf                 # safetensors | gguf; must agree with -o's extension
/// ```
/// A relative `stats=` path is taken from the folder of the recipe file that names it. Each
/// directive may appear once. `output zstd=N zstd_layout=grouped|plain` sets the level and layout of
/// a `.zst` output (the output path must end in `.zst`).
public struct RecipeDirectives: Sendable, Equatable {
    public static let names = ["calibration", "output"]

    /// The calibration file and the step that names it.
    public var calibration: (path: String, location: SourceLocation)?
    /// `safetensors` or `gguf` when the recipe says so.
    public var outputFormat: (name: String, location: SourceLocation)?
    /// `output zstd=LEVEL`: the zstd level of a `.zst` output.
    public var zstdLevel: (level: Int, location: SourceLocation)?
    /// `output zstd_layout=grouped|plain`.
    public var zstdLayout: ZstdCheckpoint.Layout?

    public init() {}

    public static func == (a: RecipeDirectives, b: RecipeDirectives) -> Bool {
        a.calibration?.path == b.calibration?.path && a.calibration?.location == b.calibration?.location
            && a.outputFormat?.name == b.outputFormat?.name && a.outputFormat?.location == b.outputFormat?.location
            && a.zstdLevel?.level == b.zstdLevel?.level && a.zstdLayout == b.zstdLayout
    }

    /// Where each directive was first given.
    private var seen: [String: SourceLocation] = [:]

    /// Reads one directive step (a step named in `names`); problems are returned, not thrown, so the
    /// caller can report them with every other problem of the recipe, in step order.
    public mutating func read(_ step: RecipeStep) -> [RecipeDiagnostic] {
        if let first = seen[step.name] {
            return [RecipeDiagnostic(step.location, "the '\(step.name)' step is already given at \(first)")]
        }
        seen[step.name] = step.location
        var diagnostics: [RecipeDiagnostic] = []
        var reader = OptionReader(step: step)
        switch step.name {
        case "calibration":
            if let path = reader.text("stats", help: "calibration statistics: safetensors (act_sq/hessian) or a llama.cpp imatrix") {
                calibration = (OptionReader.resolve(path, relativeTo: step.location.file), step.location)
            } else {
                diagnostics.append(RecipeDiagnostic(step.location, "calibration needs stats=FILE"))
            }
        default:
            let format = reader.choice("format", default: "", from: ["safetensors", "gguf"], help: "output format (must match -o)")
            if !format.isEmpty { outputFormat = (format, step.location) }
            if step.option("zstd") != nil {
                zstdLevel = (reader.int("zstd", default: 3, in: 1...22, help: "zstd level of a .zst output"), step.location)
            } else {
                _ = reader.int("zstd", default: 3, in: 1...22, help: "zstd level of a .zst output")
            }
            let layout = reader.choice("zstd_layout", default: "grouped", from: ZstdCheckpoint.Layout.allCases.map(\.rawValue),
                                       help: "grouped: float byte planes where smaller; plain: `zstd -d` restores the file")
            if step.option("zstd_layout") != nil { zstdLayout = ZstdCheckpoint.Layout(rawValue: layout) }
        }
        return reader.finish() + diagnostics
    }
}
