import TensorCore

/// A PEFT LoRA (or DoRA) adapter folder, as PEFT saves it: `adapter_config.json` and
/// `adapter_model.safetensors` (algorithms.md §6.1–6.2).
///
/// Keys are mapped to the base checkpoint by stripping `base_model.model.` and replacing the LoRA
/// part by `.weight`: `base_model.model.<M>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r]
/// (embeddings: `.lora_embedding_A` [r, rows], `.lora_embedding_B` [columns, r]) update
/// `<M>.weight`; `.lora_B.bias` [out] (with `lora_bias`) updates `<M>.bias`; DoRA's
/// `.lora_magnitude_vector` [out] (saved without `.weight`) rescales `<M>.weight`'s rows; any other
/// key (`modules_to_save`, biases with `bias=all|lora_only`) replaces the base tensor
/// `<M>.<param>` (`.base_layer.` dropped). Keys of other PEFT methods (LoHa, LoKr, IA³, ...) are
/// refused by name.
public struct LoRAAdapter: Sendable {
    /// One module's low-rank update of `<module>.weight`.
    public struct Module: Sendable {
        public let module: String
        public var a: DenseTensor?
        public var b: DenseTensor?
        public var bBias: DenseTensor?
        public var magnitude: DenseTensor?
        public var isEmbedding = false
        public var rank = 0
        public var scaling = 0.0

        /// The base tensor this module updates.
        public var weightName: String { module + ".weight" }
    }

    public let folder: String
    public let config: LoRAConfig
    /// By base weight name, in the adapter file's order.
    public let modules: [Module]
    /// Whole base tensors the adapter replaces (`modules_to_save`, saved biases), by base name.
    public let replacements: [(name: String, tensor: DenseTensor)]

    /// Reads an adapter folder; every problem is a `LoRAAdapterError` naming the file and key.
    public static func load(folder: String) throws -> LoRAAdapter {
        let root = folder.hasSuffix("/") ? String(folder.dropLast()) : folder
        let configPath = root + "/adapter_config.json"
        guard FileSystem.exists(configPath) else {
            throw LoRAAdapterError(file: root, message: "not a PEFT adapter folder (no adapter_config.json)")
        }
        let configFile = try MappedFile(path: configPath)
        let configBytes = Array(configFile.bytes)
        withExtendedLifetime(configFile) {}
        let config = try LoRAConfig(json: configBytes, file: configPath)
        let weightsPath = root + "/adapter_model.safetensors"
        guard FileSystem.exists(weightsPath) else {
            if FileSystem.exists(root + "/adapter_model.bin") {
                throw LoRAAdapterError(file: root + "/adapter_model.bin", message: "PyTorch pickle adapters are not read (they can run code); save the adapter with safe_serialization=True or convert it to adapter_model.safetensors")
            }
            throw LoRAAdapterError(file: root, message: "no adapter_model.safetensors")
        }
        let tensors = try SafetensorsReader.open(path: weightsPath)
        return try LoRAAdapter(folder: root, config: config, tensors: tensors, file: weightsPath)
    }

    /// Builds the adapter from its parsed config and tensors (`file` names the tensors in errors).
    public init(folder: String, config: LoRAConfig, tensors: Checkpoint, file: String) throws(LoRAAdapterError) {
        func fail(_ message: String) -> LoRAAdapterError { LoRAAdapterError(file: file, message: message) }
        self.folder = folder
        self.config = config
        var modules: [String: Module] = [:], order: [String] = []
        var replacements: [(name: String, tensor: DenseTensor)] = []
        let foreign = [".hada_", ".lokr_", ".ia3_", ".vera_", ".oft_", ".boft_", ".lora_E", ".ranknum", ".fourierft_", ".hra_", ".vblora_", ".shira_"]
        for entry in tensors.entries {
            let key = entry.name
            guard key.hasPrefix("base_model.model.") else { throw fail("key '\(key)' does not start with base_model.model. (not a PEFT adapter state dict)") }
            guard case .dense(let t) = entry.payload, t.dtype.isConvertibleFloat else { throw fail("'\(key)' is not a float tensor") }
            if let part = foreign.first(where: { key.contains($0) }) {
                throw fail("'\(key)' belongs to a PEFT method other than LoRA (\(part.dropFirst())…): not supported by merge.lora")
            }
            let name = String(key.dropFirst("base_model.model.".count))
            let parts: [(suffix: String, slot: WritableKeyPath<Module, DenseTensor?>, embedding: Bool)] = [
                (".lora_A.weight", \.a, false), (".lora_B.weight", \.b, false), (".lora_B.bias", \.bBias, false),
                (".lora_embedding_A", \.a, true), (".lora_embedding_B", \.b, true),
                (".lora_magnitude_vector.weight", \.magnitude, false), (".lora_magnitude_vector", \.magnitude, false),
            ]
            if let part = parts.first(where: { name.hasSuffix($0.suffix) }) {
                let module = String(name.dropLast(part.suffix.count))
                if modules[module] == nil { modules[module] = Module(module: module); order.append(module) }
                guard modules[module]![keyPath: part.slot] == nil else { throw fail("'\(key)' repeats a part of module '\(module)'") }
                modules[module]![keyPath: part.slot] = t
                if part.embedding { modules[module]!.isEmbedding = true }
                continue
            }
            if name.contains(".lora_") { throw fail("'\(key)' is a LoRA part this merge does not know") }
            replacements.append((Self.droppingBaseLayer(name), t))
        }
        var built: [Module] = []
        for module in order {
            var m = modules[module]!
            guard let a = m.a, let b = m.b else { throw fail("module '\(module)' has \(m.a == nil ? "no lora_A" : "no lora_B") tensor") }
            let aRank = a.shape.dimensions.first ?? 0, bRank = b.shape.dimensions.last ?? 0
            let aRows = aRank
            guard a.shape.rank == 2, b.shape.rank == 2 else { throw fail("module '\(module)': lora_A \(a.shape) and lora_B \(b.shape) must be 2-D (convolution adapters are not yet supported)") }
            guard aRows >= 1 else { throw fail("module '\(module)': rank 0 (lora_A \(a.shape))") }
            guard aRows == bRank else { throw fail("module '\(module)': lora_A \(a.shape) and lora_B \(b.shape) disagree on the rank") }
            let (r, alpha) = try config.rankAndAlpha(of: module)
            guard r == aRows else { throw fail("module '\(module)': the config gives rank \(r), the tensors have \(aRows)") }
            m.rank = r
            m.scaling = config.scaling(rank: r, alpha: alpha)
            if m.magnitude != nil && !config.useDoRA { throw fail("module '\(module)' has a DoRA magnitude vector, but use_dora is false") }
            if config.useDoRA && m.magnitude == nil && !m.isEmbedding { throw fail("module '\(module)': use_dora is true, but there is no lora_magnitude_vector") }
            if m.bBias != nil && !config.loraBias { throw fail("module '\(module)' has lora_B.bias, but lora_bias is false") }
            built.append(m)
        }
        if built.isEmpty && replacements.isEmpty { throw fail("holds no LoRA tensors") }
        self.modules = built
        self.replacements = replacements
    }

    /// `a.base_layer.bias` → `a.bias` (PEFT's wrapped layer).
    static func droppingBaseLayer(_ name: String) -> String {
        var parts = name.split(separator: ".", omittingEmptySubsequences: false)
        parts.removeAll { $0 == "base_layer" }
        return parts.joined(separator: ".")
    }
}
