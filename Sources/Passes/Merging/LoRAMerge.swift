import Foundation
import TensorCore
import CheckpointFormats
import Recipes

/// `merge.lora`: adds PEFT LoRA/DoRA adapters to the base weights, with PEFT's exact semantics
/// (algorithms.md §6; see `LoRAAdapter` for the files and keys, `LoRADelta` for the formulas).
///
/// ```
/// merge.lora adapter=adapters/chat                      # weight 1
/// merge.lora adapter="a, b" weight=0.7,0.3              # the weighted sum of both deltas
/// ```
/// - Several adapters in one step merge as `W' = W + Σ_i w_i ΔW_i` (each `ΔW_i` with its own
///   scaling), computed in float64 and rounded once to the tensor's dtype. This is the exact
///   weighted sum; PEFT's `add_weighted_adapter(combination_type="linear")` is not: it builds one
///   adapter from `Σ √(w_i s_i)·A_i` and `Σ √(w_i s_i)·B_i`, whose product has cross terms `B_i A_j`.
///   DoRA adapters apply in the order given (each renormalizes rows); `modules_to_save` tensors
///   replace the base's whatever the weight. Separate `merge.lora` steps apply one after the other,
///   rounding to the dtype in between.
/// - Quantized bases (ggml blocks such as Q4_K, or integer schemes): dequantize, merge, requantize
///   to the same type (imatrix-weighted when statistics are given), and note the fraction of the
///   adapter's change that survived, `⟨Q(W+ΔW) − W_q, ΔW⟩/‖ΔW‖²`, with a warning under 50%
///   (requantizing erases deltas below half a step, §6.6).
/// - A llama-family GGUF base with llama.cpp's names (`blk.N.attn_q.weight`, ...) is matched through
///   `LlamaTensorNames`; for `general.architecture = llama`, the adapter's Q/K rows are permuted as
///   convert_hf_to_gguf.py permuted the base's (`llama.attention.head_count`, `_kv` for K).
/// - A base stored sparse (pruned) keeps its zeros, `W' = M ⊙ (W + ΔW)` (§6.7), and the note gives
///   the fraction of the delta's energy the mask dropped.
public struct LoRAMerge: CompressionPass {
    public static let name = "merge.lora"
    public static let summary = "merge PEFT LoRA/DoRA adapters (rsLoRA, rank/alpha patterns, fan_in_fan_out, modules_to_save), weighted sums, quantized bases"

    public struct Options: PassOptions {
        public var adapters: [LoRAAdapter] = []
        public var weights: [Double] = []

        public init(reading reader: inout OptionReader) {
            let paths = reader.paths("adapter", help: "PEFT adapter folder(s) (adapter_config.json + adapter_model.safetensors), relative to the recipe")
            let weightTexts = reader.list("weight", help: "merge weight of each adapter (default 1)")
            guard !paths.isEmpty else {
                reader.reportMissing("adapter", "needs adapter=DIR (a PEFT adapter folder)")
                return
            }
            for path in paths {
                do { adapters.append(try LoRAAdapter.load(folder: path)) } catch { reader.report("adapter", "\(error)") }
            }
            weights = weightTexts.isEmpty ? [Double](repeating: 1, count: paths.count) : weightTexts.map { Double($0) ?? .nan }
            if weights.count != paths.count || weights.contains(where: { !$0.isFinite }) {
                reader.report("weight", "give one finite weight per adapter (\(paths.count) adapters, weights '\(weightTexts.joined(separator: ","))')")
                weights = [Double](repeating: 1, count: paths.count)
            }
        }
    }

    public let options: Options
    public init(options: Options) { self.options = options }

    public static let stage = PassStage.merge
    public static func selectsByDefault(name: String, rank: Int) -> Bool { false }

    /// What the adapters update: each module's weight (and bias with `lora_bias`), and the tensors
    /// they replace.
    /// (Names may be Hugging Face's or, for a llama-family GGUF, llama.cpp's: both are listed.)
    var targets: Set<String> {
        var names = Set<String>()
        for adapter in options.adapters {
            for m in adapter.modules {
                names.formUnion(Self.spellings(of: m.weightName))
                if m.bBias != nil { names.insert(m.module + ".bias") }
            }
            for r in adapter.replacements { names.formUnion(Self.spellings(of: r.name)) }
        }
        return names
    }

    /// `name` and its llama.cpp (or Hugging Face) spelling.
    static func spellings(of name: String) -> [String] { [name] + LlamaTensorNames.aliases(of: name) }

    /// True for llama.cpp's `blk.N.attn_q.weight` / `blk.N.attn_k.weight`, whose rows convert_hf_to_gguf
    /// permutes for llama models.
    static func isPermutedInGGUF(_ name: String) -> Bool {
        name.hasPrefix("blk.") && (name.hasSuffix(".attn_q.weight") || name.hasSuffix(".attn_k.weight"))
    }

    /// For a llama GGUF base: each selected Q/K tensor's head count (`llama.attention.head_count`,
    /// `head_count_kv` for K), so `apply` can put the adapter's rows in llama.cpp's order.
    public func plan(_ checkpoint: Checkpoint, selected: [Int], consumers: [Int: any CompressionPass], context: inout PassContext) throws {
        let permuted = selected.filter { Self.isPermutedInGGUF(checkpoint.entries[$0].name) }
        guard !permuted.isEmpty, checkpoint.metadataValue("general.architecture")?.description == "llama" else { return }
        func count(_ key: String) throws -> Int {
            guard case .gguf(let value)? = checkpoint.metadataValue(key), let n = value.integerValue, n > 0 else {
                throw PassError(pass: Self.name, tensor: checkpoint.entries[permuted[0]].name, message: "the GGUF base has no usable \(key); it is needed to put the adapter's Q/K rows in llama.cpp's order")
            }
            return n
        }
        let heads = try count("llama.attention.head_count")
        let kvHeads = checkpoint.metadataValue("llama.attention.head_count_kv") == nil ? heads : try count("llama.attention.head_count_kv")
        for i in permuted {
            let name = checkpoint.entries[i].name
            let n = name.hasSuffix(".attn_k.weight") ? kvHeads : heads
            let rows = checkpoint.entries[i].shape.rowCount
            guard rows % (2 * n) == 0 else { throw PassError(pass: Self.name, tensor: name, message: "\(rows) rows do not split into \(n) heads of rotary pairs") }
            context.plan.set(.permutedRows(heads: n), for: name)
        }
    }

    public func selectsByDefault(name: String, rank: Int) -> Bool { targets.contains(name) }

    public func bindingProblems(_ manifest: CheckpointManifest) -> [String] {
        var problems: [String] = []
        let shapes = Dictionary(manifest.entries.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
        for adapter in options.adapters {
            let file = adapter.folder + "/adapter_model.safetensors"
            func missing(_ key: String, _ name: String) -> String { "\(file): '\(key)' updates '\(name)', which the base does not have" }
            func shape(of name: String) -> Shape? { Self.spellings(of: name).lazy.compactMap { shapes[$0] }.first }
            for m in adapter.modules {
                let key = "base_model.model.\(m.module).lora_A.weight"
                guard let shape = shape(of: m.weightName) else { problems.append(missing(key, m.weightName)); continue }
                let expected = LoRADelta.baseShape(of: m, fanInFanOut: adapter.config.fanInFanOut)
                if shape.dimensions != expected {
                    problems.append("\(file): module '\(m.module)': lora_A \(m.a!.shape) and lora_B \(m.b!.shape) give a delta of \(Shape(expected)), but '\(m.weightName)' is \(shape)\(adapter.config.fanInFanOut ? " (fan_in_fan_out)" : "")")
                }
                if let magnitude = m.magnitude, magnitude.elementCount != m.b!.shape.dimensions[0] {
                    problems.append("\(file): module '\(m.module)': lora_magnitude_vector has \(magnitude.elementCount) values for \(m.b!.shape.dimensions[0]) output rows")
                }
                if let bias = m.bBias {
                    let name = m.module + ".bias"
                    guard let biasShape = shapes[name] else { problems.append(missing("base_model.model.\(m.module).lora_B.bias", name)); continue }
                    if biasShape.elementCount != bias.elementCount { problems.append("\(file): '\(m.module).lora_B.bias' has \(bias.elementCount) values, '\(name)' \(biasShape.elementCount)") }
                }
            }
            for r in adapter.replacements {
                guard let shape = shape(of: r.name) else { problems.append(missing("base_model.model.\(r.name)", r.name)); continue }
                if shape.dimensions != r.tensor.shape.dimensions { problems.append("\(file): 'base_model.model.\(r.name)' is \(r.tensor.shape), but '\(r.name)' is \(shape)") }
            }
        }
        return problems
    }

    public func problem(with entry: CheckpointManifest.Entry) -> String? {
        if let dtype = entry.dtype, !dtype.isConvertibleFloat { return "expects a float tensor, found \(entry.encoding)" }
        if entry.dtype == nil && (entry.encoding.hasPrefix("nf4") || entry.encoding.hasPrefix("fp8") || entry.encoding.hasPrefix("codebook")) {
            return "merging into a \(entry.encoding) base is not yet supported (integer and ggml bases are)"
        }
        return nil
    }

    public func apply(to entry: inout TensorEntry, context: PassContext) throws {
        let name = entry.name
        func fail(_ message: String) -> PassError { PassError(pass: Self.name, tensor: name, message: message) }
        var original: [Float]
        switch entry.payload {
        case .dense(let t) where t.dtype.isConvertibleFloat: original = try t.floats()
        case .ggml(let t):
            guard let type = t.type, GGMLQuantizationPass.types.contains(type) else { throw fail("requantizing to \(t.typeName) is not yet supported") }
            original = try GGMLQuantization.dequantize(t, name: name, threadCount: context.threadCount)
        case .quantized(let q) where q.scheme == .integer && q.columnBits == nil: original = q.dequantized()
        default: throw fail("merging into a \(entry.encodingName) base is not yet supported")
        }
        if let bad = original.firstIndex(where: { !$0.isFinite }) { throw fail("holds NaN or Inf (element \(bad))") }
        var w = original.map(Double.init)
        for (adapter, weight) in zip(options.adapters, options.weights) {
            let heads: Int? = if case .permutedRows(let n)? = context.plan[name] { n } else { nil }
            if let replacement = adapter.replacements.first(where: { Self.spellings(of: $0.name).contains(name) }) {
                let values = try replacement.tensor.floats().map(Double.init)
                w = heads.map { LoRADelta.permuteRows(values, rowLength: entry.shape.columnCount, heads: $0) } ?? values
            }
            for m in adapter.modules {
                if m.bBias != nil, m.module + ".bias" == name {
                    let bias = try m.bBias!.floats()
                    for i in w.indices { w[i] += m.scaling * weight * Double(bias[i]) }
                }
                guard Self.spellings(of: m.weightName).contains(name) else { continue }
                if heads == nil && m.magnitude == nil {   // plain LoRA in the HF row order: add in place
                    try LoRADelta.add(m, into: &w, fanInFanOut: adapter.config.fanInFanOut, factor: m.scaling * weight, threadCount: context.threadCount)
                    continue
                }
                var delta = try LoRADelta.delta(m, fanInFanOut: adapter.config.fanInFanOut, factor: m.scaling * weight, threadCount: context.threadCount)
                var magnitude = try m.magnitude?.floats()
                if let heads {   // llama.cpp's Q/K row order: permute ΔW's rows (and DoRA's magnitudes) the same way
                    delta = LoRADelta.permuteRows(delta, rowLength: entry.shape.columnCount, heads: heads)
                    magnitude = magnitude.map { LoRADelta.permuteRows($0, rowLength: 1, heads: heads) }
                }
                if let magnitude {
                    let out = m.b!.shape.dimensions[0], inner = m.a!.shape.dimensions[1]
                    LoRADelta.applyDoRA(&w, delta: delta, magnitude: magnitude, out: out, inner: inner, transposed: adapter.config.fanInFanOut)
                } else {
                    for i in w.indices { w[i] += delta[i] }
                }
            }
        }
        if let bad = w.firstIndex(where: { !$0.isFinite }) { throw fail("the merged value of element \(bad) is not finite") }
        if entry.sparsity != nil {   // keep a pruned base's zeros (§6.7)
            var dropped = 0.0, total = 0.0
            for i in w.indices {
                let d = w[i] - Double(original[i])
                total += d * d
                if original[i] == 0 { dropped += d * d; w[i] = 0 }
            }
            context.note?("\(Self.name): tensor '\(name)' is sparse; its zeros are kept, dropping \(String(format: "%.1f", total > 0 ? 100 * dropped / total : 0))% of the adapter's change")
        }
        switch entry.payload {
        case .dense(let t):
            // Narrower dtypes: float64 → float32 rounded to odd, then to nearest even in the dtype, which
            // is one correct rounding of the float64 value (no double rounding).
            let stored = Self.floats(w, roundingToOdd: t.dtype != .f32 && t.dtype != .f64, threadCount: context.threadCount)
            entry.payload = .dense(try DenseTensor(floats: stored, shape: t.shape, dtype: t.dtype))
        case .ggml(let t):
            let importance = try context.calibration?.activationSquares(for: name)
            let requantized = try GGMLQuantization.quantize(try DenseTensor(floats: w.map { Float($0) }, shape: t.shape), name: name, to: t.type!,
                                                            importance: importance, threadCount: context.threadCount)
            entry.payload = .ggml(requantized)
            note(kept: try GGMLQuantization.dequantize(requantized, name: name, threadCount: context.threadCount), original: original, merged: w, type: t.typeName, name: name, context: context)
        case .quantized(let q):
            let requantized = IntegerQuantizer(bits: q.bits, symmetric: q.symmetric, granularity: q.granularity).quantize(w.map { Float($0) }, shape: q.shape, threadCount: context.threadCount)
            entry.payload = .quantized(requantized)
            note(kept: requantized.dequantized(), original: original, merged: w, type: q.encodingName, name: name, context: context)
        case .shared:
            preconditionFailure("shared bases are refused before merging")
        }
    }

    /// `w` as Floats (rounded to nearest, or to odd), converted in parallel chunks.
    static func floats(_ w: [Double], roundingToOdd: Bool, threadCount: Int) -> [Float] {
        var out = [Float](repeating: 0, count: w.count)
        out.withUnsafeMutableBufferPointer { out in
            w.withUnsafeBufferPointer { w in
                ParallelLoop.forEachRange(count: w.count, threadCount: threadCount) { range in
                    if roundingToOdd { for i in range { out[i] = roundedToOdd(w[i]) } } else { for i in range { out[i] = Float(w[i]) } }
                }
            }
        }
        return out
    }

    /// `x` as a Float rounded to odd: exact values stay, others take the neighbour with an odd last
    /// significand bit. Rounding that to a format with at least 2 fewer significand bits gives the
    /// correctly rounded `x` (as if rounded once from float64).
    static func roundedToOdd(_ x: Double) -> Float {
        let f = Float(x)
        guard f.bitPattern & 1 == 0, Double(f) != x, f.isFinite else { return f }   // already odd, or exact
        guard f != 0 else { return x > 0 ? .leastNonzeroMagnitude : -.leastNonzeroMagnitude }
        // The odd neighbour on x's side: one step of the magnitude toward x.
        let towardLarger = (Double(f) < x) == (f > 0)
        return Float(bitPattern: towardLarger ? f.bitPattern + 1 : f.bitPattern - 1)
    }

    /// The fraction of the adapter's change a requantized base kept, `⟨Q(W+ΔW) − W_q, ΔW⟩/‖ΔW‖²`,
    /// as a note (a warning under 50%).
    private func note(kept requantized: [Float], original: [Float], merged: [Double], type: String, name: String, context: PassContext) {
        var dot = 0.0, norm = 0.0
        for i in merged.indices {
            let d = merged[i] - Double(original[i])
            dot += (Double(requantized[i]) - Double(original[i])) * d
            norm += d * d
        }
        guard norm > 0 else { return }
        let kept = dot / norm
        let text = "\(Self.name): tensor '\(name)' requantized to \(type) keeps \(String(format: "%.1f", 100 * kept))% of the adapter's change"
        context.note?(kept < 0.5 ? "warning: \(text); merge into the full-precision base and quantize once afterwards, or requantize at 8 bits" : text)
    }
}
