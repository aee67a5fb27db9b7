import TensorCore
import CheckpointFormats
import Recipes

/// Maps recipe step names to pass types. A value, not global state: a caller can extend it with
/// `PassRegistry(PassRegistry.builtIn.passes + [MyPass.self])`.
public struct PassRegistry: Sendable {
    public let passes: [any CompressionPass.Type]

    public static let builtIn = PassRegistry([LoRAMerge.self, MagnitudePruning.self, WandaPruning.self, OBSPruning.self, BitAllocationPass.self, IntegerQuantization.self, NF4Quantization.self, FP8Quantization.self, GGMLQuantizationPass.self, RPSSharing.self, CastPass.self])


    public init(_ passes: [any CompressionPass.Type]) {
        precondition(Set(passes.map { $0.name }).count == passes.count, "pass names must be unique")
        self.passes = passes
    }

    public func pass(named name: String) -> (any CompressionPass.Type)? { passes.first { $0.name == name } }

    /// Binds every step of `recipe` against `manifest`, collecting all problems: unknown steps (with a
    /// suggestion), bad options, invalid patterns, steps that select nothing (unless `optional=true`)
    /// and tensors a pass cannot take. Throws them all at once.
    public func bind(_ recipe: Recipe, manifest: CheckpointManifest) throws(RecipeDiagnostics) -> [BoundStep] {
        try bindRecipe(recipe, manifest: manifest).steps
    }

    /// `bind`, plus the recipe's directives (`calibration`, `output`; see `RecipeDirectives`).
    public func bindRecipe(_ recipe: Recipe, manifest: CheckpointManifest) throws(RecipeDiagnostics) -> BoundRecipe {
        var directives = RecipeDirectives()
        var diagnostics: [RecipeDiagnostic] = []
        var bound: [BoundStep] = []
        var owner: [Int: SourceLocation] = [:]     // a tensor is compressed by one encoding step only
        var prunedBy: [Int: SourceLocation] = [:]  // ... after at most one pruning step
        var plannedAt: [Int: SourceLocation] = [:]
        for step in recipe.steps {
            if RecipeDirectives.names.contains(step.name) {
                diagnostics += directives.read(step)
                continue
            }
            guard let type = pass(named: step.name) else {
                let hint = closestMatch(to: step.name, in: passes.map { $0.name }).map { " (did you mean '\($0)'?)" } ?? ""
                diagnostics.append(RecipeDiagnostic(step.location, "unknown pass '\(step.name)'\(hint)"))
                continue
            }
            let problemsBefore = diagnostics.count
            var reader = OptionReader(step: step)
            let targets = step.option("targets") != nil ? reader.list("targets", help: "") : nil
            let ignore = reader.list("ignore", help: "")
            let optional = reader.bool("optional", default: false, help: "")
            let instance = PassRegistry.make(type, &reader)
            diagnostics += reader.finish()
            let selector: TensorSelector
            do {
                let pass = instance
                selector = try TensorSelector(targets: targets, ignore: ignore, defaultRule: { pass.selectsByDefault(name: $0, rank: $1) })
            } catch {
                diagnostics.append(RecipeDiagnostic(step.location, "\(step.name): \(error)"))
                continue
            }
            for problem in instance.bindingProblems(manifest) {
                diagnostics.append(RecipeDiagnostic(step.location, "\(step.name): \(problem)"))
            }
            let selected = manifest.entries.indices.filter { selector.selects(name: manifest.entries[$0].name, rank: manifest.entries[$0].shape.rank) }
            if selected.isEmpty && !optional && diagnostics.count == problemsBefore {   // (a broken step selects nothing anyway)
                diagnostics.append(RecipeDiagnostic(step.location, "\(step.name) selects no tensor (add optional=true if that is intended)"))
            }
            for i in selected {
                if let problem = instance.problem(with: manifest.entries[i]) {
                    diagnostics.append(RecipeDiagnostic(step.location, "\(step.name): tensor '\(manifest.entries[i].name)': \(problem)"))
                }
                let tensor = manifest.entries[i].name
                guard type.rewritesTensors else {
                    if plannedAt[i] == nil { plannedAt[i] = step.location }
                    continue
                }
                if type.stage == .merge {
                    if let first = owner[i] ?? prunedBy[i] {
                        diagnostics.append(RecipeDiagnostic(step.location, "tensor '\(tensor)' is already compressed by the step at \(first); merge adapters first"))
                    } else if let first = plannedAt[i] {
                        diagnostics.append(RecipeDiagnostic(step.location, "tensor '\(tensor)' is planned by the step at \(first); merge adapters before allocating bits"))
                    }
                } else if type.stage == .prune {
                    if let first = owner[i] {
                        diagnostics.append(RecipeDiagnostic(step.location, "tensor '\(tensor)' is already compressed by the step at \(first); prune before quantizing"))
                    } else if let first = prunedBy[i] {
                        diagnostics.append(RecipeDiagnostic(step.location, "tensor '\(tensor)' is already pruned by the step at \(first)"))
                    } else if let first = plannedAt[i] {
                        diagnostics.append(RecipeDiagnostic(step.location, "tensor '\(tensor)' is planned by the step at \(first); prune before allocating bits"))
                    } else {
                        prunedBy[i] = step.location
                    }
                } else if let first = owner[i] {
                    diagnostics.append(RecipeDiagnostic(step.location, "tensor '\(tensor)' is already compressed by the step at \(first)"))
                } else {
                    owner[i] = step.location
                }
            }
            bound.append(BoundStep(pass: instance, selected: selected, location: step.location))
        }
        diagnostics += Self.linkPlans(&bound, manifest: manifest)
        guard diagnostics.isEmpty else { throw RecipeDiagnostics(diagnostics) }
        return BoundRecipe(steps: bound, directives: directives)
    }

    /// Connects each planning step (`allocate.bits`) to the later steps that take its settings
    /// (`bits=auto`, `type=auto`): every tensor a planning step selects needs exactly one such later
    /// step that the planner accepts, and every tensor such a step selects needs an earlier plan.
    static func linkPlans(_ steps: inout [BoundStep], manifest: CheckpointManifest) -> [RecipeDiagnostic] {
        var diagnostics: [RecipeDiagnostic] = []
        var plannedBy: [Int: SourceLocation] = [:]
        for s in steps.indices {
            let step = steps[s]
            let name = type(of: step.pass).name
            if step.pass.takesPlannedSetting {
                for i in step.selected where plannedBy[i] == nil {
                    diagnostics.append(RecipeDiagnostic(step.location, "\(name): tensor '\(manifest.entries[i].name)' has no setting planned by an earlier allocate.bits step"))
                }
            }
            guard !type(of: step.pass).rewritesTensors else { continue }
            for i in step.selected {
                let tensor = manifest.entries[i].name
                if let first = plannedBy[i] {
                    diagnostics.append(RecipeDiagnostic(step.location, "tensor '\(tensor)' is already planned by the step at \(first)"))
                    continue
                }
                plannedBy[i] = step.location
                guard let consumer = steps[(s + 1)...].first(where: { $0.pass.takesPlannedSetting && $0.selected.contains(i) }) else {
                    diagnostics.append(RecipeDiagnostic(step.location, "\(name): tensor '\(tensor)' is planned, but no later step takes the plan (quantize.int bits=auto or quantize.ggml type=auto)"))
                    continue
                }
                if let problem = step.pass.consumerProblem(consumer.pass) {
                    diagnostics.append(RecipeDiagnostic(step.location, "\(name): tensor '\(tensor)': \(problem)"))
                } else {
                    steps[s].consumers[i] = consumer.pass
                }
            }
        }
        return diagnostics
    }

    /// Opens the existential to build a pass from its options.
    static func make<P: CompressionPass>(_ type: P.Type, _ reader: inout OptionReader) -> any CompressionPass {
        P(options: P.Options(reading: &reader))
    }

    /// Every pass's name, summary and options, for `modelpress passes`.
    public func describe() -> [(name: String, summary: String, options: [OptionReader.Specification])] {
        passes.map { type in
            var reader = OptionReader(describing: type.name)
            _ = PassRegistry.make(type, &reader)
            return (type.name, type.summary, reader.specifications)
        }
    }
}

/// A recipe bound to a checkpoint: its pass steps and its directives.
public struct BoundRecipe: Sendable {
    public let steps: [BoundStep]
    public let directives: RecipeDirectives
}

/// A recipe step bound to a pass instance and the positions of the tensors it selects.
public struct BoundStep: Sendable {
    public let pass: any CompressionPass
    public let selected: [Int]
    public let location: SourceLocation
    /// For a planning step: the step that takes each selected tensor's planned setting.
    public internal(set) var consumers: [Int: any CompressionPass] = [:]

    init(pass: any CompressionPass, selected: [Int], location: SourceLocation) {
        self.pass = pass
        self.selected = selected
        self.location = location
    }
}
