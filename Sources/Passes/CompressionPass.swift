import TensorCore
import CheckpointFormats
import Recipes

/// A compression technique that rewrites the tensors a recipe step selects.
///
/// Lifecycle, driven by the pipeline: options are read (and checked) when the recipe is bound;
/// `problem(with:)` sees names and shapes only, before any weight is read; `plan` takes an optional
/// global look over all selected tensors (a bit budget) and leaves its decisions in the context;
/// `apply` rewrites one selected tensor at a time (streaming). Passes are values: the same pass with
/// the same options gives the same bytes whatever the thread count.
public protocol CompressionPass: Sendable {
    associatedtype Options: PassOptions
    /// Recipe name, `family.technique` (e.g. `quantize.int`).
    static var name: String { get }
    /// One line for `modelpress passes`.
    static var summary: String { get }
    /// True when the pass reads calibration statistics (the pipeline warns about weights they miss).
    static var usesCalibration: Bool { get }
    /// True when this configured pass cannot run without calibration statistics (the pipeline
    /// stops before reading any weight when none are given). Default: false.
    var requiresCalibration: Bool { get }
    /// The selection when a step gives no `targets=` (by tensor name and rank).
    static func selectsByDefault(name: String, rank: Int) -> Bool
    /// This configured pass's selection when its step gives no `targets=`. Default:
    /// `selectsByDefault` (a merge selects what its adapter updates).
    func selectsByDefault(name: String, rank: Int) -> Bool
    /// Problems with the whole checkpoint's names and shapes (an adapter module the base lacks),
    /// reported at the step before any weight is read. Default: none.
    func bindingProblems(_ manifest: CheckpointManifest) -> [String]
    init(options: Options)
    /// The problem with applying this pass to a tensor, if any (shape, dtype, divisibility).
    func problem(with entry: CheckpointManifest.Entry) -> String?
    /// The problem with the calibration statistics this pass would use for a tensor, if any
    /// (checked before any weight is read, when a calibration file is given). Default: none.
    func calibrationProblem(with entry: CheckpointManifest.Entry, statistics: CalibrationStatistics) -> String?
    /// Where the pass sits in a tensor's life (default `encode`): see `PassStage`.
    static var stage: PassStage { get }
    /// False for a planning step (`allocate.bits`) that decides settings for later steps without
    /// rewriting anything itself; its tensors stay free for one rewriting step each. Default: true.
    static var rewritesTensors: Bool { get }
    /// True when this configured pass takes each tensor's setting from an earlier planning step's
    /// plan (`quantize.int bits=auto`, `quantize.ggml type=auto`). Default: false.
    var takesPlannedSetting: Bool { get }
    /// A planning step's objection to the step that will consume its plan for a tensor, if any
    /// (checked when the recipe is bound). Default: none.
    func consumerProblem(_ consumer: any CompressionPass) -> String?
    /// Optional global look over all selected tensors before any is rewritten. `consumers` maps each
    /// selected tensor's position to the later step that takes its planned setting. Default: nothing.
    func plan(_ checkpoint: Checkpoint, selected: [Int], consumers: [Int: any CompressionPass], context: inout PassContext) throws
    /// Rewrites one selected tensor.
    func apply(to entry: inout TensorEntry, context: PassContext) throws
}

/// Where a rewriting pass sits in a tensor's life. A tensor may be rewritten by any number of `merge`
/// steps (adapters added to the weights), then by at most one `prune` step (dense in, dense out:
/// some weights set to exact zeros), then by at most one `encode` step (quantize, cast), in that
/// order; merging and pruning also come before any `allocate.bits` plan of the tensor, so that bit
/// allocation measures the weights that will be quantized.
public enum PassStage: Sendable, Comparable { case merge, prune, encode }

/// A pass's options, read through an `OptionReader` (which also documents them).
public protocol PassOptions: Sendable {
    init(reading reader: inout OptionReader)
}

/// What a pass may use while planning and applying: the thread budget, the step's position (for
/// messages), the calibration statistics (when the recipe or the command line names a file), the
/// output format (real storage differs between writers), and the plans of earlier planning steps.
public struct PassContext: Sendable {
    public var threadCount: Int
    public var location: SourceLocation?
    public var calibration: CalibrationStatistics?
    public var outputFormat: CheckpointFormat
    public var plan: AllocationPlan
    /// Called with what a planning step decided (one line per step).
    public var note: (@Sendable (String) -> Void)?

    public init(threadCount: Int = 1, location: SourceLocation? = nil, calibration: CalibrationStatistics? = nil,
                outputFormat: CheckpointFormat = .safetensors, plan: AllocationPlan = AllocationPlan()) {
        self.threadCount = threadCount
        self.location = location
        self.calibration = calibration
        self.outputFormat = outputFormat
        self.plan = plan
    }
}

/// Errors while applying a pass to a tensor (bad weights: exit 65).
public struct PassError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    public let pass: String
    public let tensor: String
    public let message: String

    public init(pass: String, tensor: String, message: String) {
        self.pass = pass
        self.tensor = tensor
        self.message = message
    }

    public var description: String { "\(pass): tensor '\(tensor)': \(message)" }
}

extension CompressionPass {
    public static var usesCalibration: Bool { false }
    public var requiresCalibration: Bool { false }

    public func calibrationProblem(with entry: CheckpointManifest.Entry, statistics: CalibrationStatistics) -> String? { nil }

    public static var rewritesTensors: Bool { true }
    public static var stage: PassStage { .encode }
    public func selectsByDefault(name: String, rank: Int) -> Bool { Self.selectsByDefault(name: name, rank: rank) }
    public func bindingProblems(_ manifest: CheckpointManifest) -> [String] { [] }
    public var takesPlannedSetting: Bool { false }
    public func consumerProblem(_ consumer: any CompressionPass) -> String? { nil }
    public func plan(_ checkpoint: Checkpoint, selected: [Int], consumers: [Int: any CompressionPass], context: inout PassContext) throws {}

    /// The default selection of weight-like tensors: 2-D or more, named `*weight`, not norms.
    public static func isWeightMatrix(name: String, rank: Int) -> Bool {
        rank >= 2 && name.hasSuffix("weight") && !name.hasSuffix("norm.weight")
    }

    /// The tensor's values as Float, refusing NaN/Inf with the tensor's name.
    static func finiteValues(of entry: TensorEntry) throws -> [Float] {
        guard case .dense(let tensor) = entry.payload, tensor.dtype.isConvertibleFloat else {
            throw PassError(pass: name, tensor: entry.name, message: "expects a dense float tensor, found \(entry.encodingName)")
        }
        let values = try tensor.floats()
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw PassError(pass: name, tensor: entry.name, message: "holds NaN or Inf (element \(bad))")
        }
        return values
    }
}
