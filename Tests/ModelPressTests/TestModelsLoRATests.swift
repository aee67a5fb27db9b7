import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// The PEFT-layout LoRA adapters in `TestModels/` (`pico-llama-lora/{plain,rslora,dora}`,
/// `pico-gpt2-lora/fan-in-fan-out`) and their Conv1D base `pico-gpt2-conv1d`, made by
/// `make_test_models.py` (whose `--check` `TestModelsTests` runs): configs, keys, shapes, dtypes, that
/// the adapters are "trained" (nonzero B) and how large their deltas are, recomputed here in Double.
/// The expected values are written out from the README, independently of the generator.
@Suite("TestModels LoRA")
struct TestModelsLoRATests {
    static let prefix = "base_model.model."

    struct Adapter {
        let folder: String
        let dtype: DType
        /// adapter key -> shape
        let shapes: [String: [Int]]
    }

    static func llamaPairs(_ modules: [(String, out: Int, rank: Int)]) -> [String: [Int]] {
        var shapes: [String: [Int]] = [:]
        for n in 0..<2 {
            for (module, out, rank) in modules {
                let key = prefix + "model.layers.\(n).\(module)"
                shapes[key + ".lora_A.weight"] = [rank, 256]
                shapes[key + ".lora_B.weight"] = [out, rank]
            }
        }
        return shapes
    }

    static let plain: Adapter = {
        var shapes = llamaPairs([("self_attn.q_proj", 256, 8), ("self_attn.v_proj", 128, 8), ("mlp.down_proj", 256, 4)])
        shapes[prefix + "lm_head.weight"] = [128, 256]
        return Adapter(folder: "pico-llama-lora/plain", dtype: .f32, shapes: shapes)
    }()

    static let rslora = Adapter(folder: "pico-llama-lora/rslora", dtype: .bf16,
                                shapes: llamaPairs([("self_attn.q_proj", 256, 16), ("self_attn.k_proj", 128, 16)]))

    static let dora: Adapter = {
        var shapes = llamaPairs([("self_attn.o_proj", 256, 4), ("mlp.up_proj", 256, 4)])
        for n in 0..<2 {
            for module in ["self_attn.o_proj", "mlp.up_proj"] {
                shapes[prefix + "model.layers.\(n).\(module).lora_magnitude_vector"] = [256]
            }
        }
        return Adapter(folder: "pico-llama-lora/dora", dtype: .f32, shapes: shapes)
    }()

    static let fanInFanOut: Adapter = {
        var shapes: [String: [Int]] = [:]
        for (module, out) in [("transformer.h.0.attn.c_attn", 192), ("transformer.h.0.mlp.c_fc", 256)] {
            shapes[prefix + module + ".lora_A.weight"] = [4, 64]
            shapes[prefix + module + ".lora_B.weight"] = [out, 4]
            shapes[prefix + module + ".lora_B.bias"] = [out]
        }
        return Adapter(folder: "pico-gpt2-lora/fan-in-fan-out", dtype: .f32, shapes: shapes)
    }()

    static let adapters = [plain, rslora, dora, fanInFanOut]

    static let gpt2Shapes: [String: [Int]] = [
        "transformer.h.0.ln_1.weight": [64],
        "transformer.h.0.attn.c_attn.weight": [64, 192], "transformer.h.0.attn.c_attn.bias": [192],
        "transformer.h.0.mlp.c_fc.weight": [64, 256], "transformer.h.0.mlp.c_fc.bias": [256],
        "transformer.h.0.mlp.c_proj.weight": [256, 64], "transformer.h.0.mlp.c_proj.bias": [64],
    ]

    static func open(_ adapter: Adapter) throws -> Checkpoint {
        try SafetensorsReader.open(path: TestModelsTests.path(adapter.folder + "/adapter_model.safetensors"))
    }

    static func llamaBase() throws -> Checkpoint { try SafetensorsReader.open(path: TestModelsTests.path("pico-llama-f32/model.safetensors")) }
    static func gpt2Base() throws -> Checkpoint { try SafetensorsReader.open(path: TestModelsTests.path("pico-gpt2-conv1d/model.safetensors")) }

    static func configText(_ adapter: Adapter) throws -> String {
        try String(contentsOfFile: TestModelsTests.path(adapter.folder + "/adapter_config.json"), encoding: .utf8)
    }

    static func config(_ adapter: Adapter) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: TestModelsTests.path(adapter.folder + "/adapter_config.json")))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func doubles(_ checkpoint: Checkpoint, _ name: String) throws -> [Double] {
        try TestModelsTests.dense(try #require(checkpoint[name], "missing \(name)")).floats().map(Double.init)
    }

    /// PEFT's `get_pattern_key`: `re.match(rf"(.*\.)?({p})$", module)` for each key p.
    static func patternValue(_ patterns: [String: Any]?, _ module: String) throws -> Int? {
        for (key, value) in patterns ?? [:] {
            let regex = try NSRegularExpression(pattern: "^(?:.*\\.)?(?:\(key))$")
            if regex.firstMatch(in: module, range: NSRange(module.startIndex..., in: module)) != nil { return value as? Int }
        }
        return nil
    }

    /// The scaling PEFT gives `module`: α/r or α/√r, r and α from the patterns when one matches.
    static func scaling(_ config: [String: Any], _ module: String) throws -> Double {
        let r = try patternValue(config["rank_pattern"] as? [String: Any], module) ?? (config["r"] as? Int ?? -1)
        let alpha = try patternValue(config["alpha_pattern"] as? [String: Any], module) ?? (config["lora_alpha"] as? Int ?? -1)
        return (config["use_rslora"] as? Bool) == true ? Double(alpha) / Double(r).squareRoot() : Double(alpha) / Double(r)
    }

    /// scaling · B·A, [out, in] row-major, in Double.
    static func delta(a: [Double], b: [Double], rank: Int, scaling: Double) -> [Double] {
        let inFeatures = a.count / rank, out = b.count / rank
        var d = [Double](repeating: 0, count: out * inFeatures)
        for o in 0..<out {
            for k in 0..<rank {
                let bk = b[o * rank + k] * scaling
                for j in 0..<inFeatures { d[o * inFeatures + j] += bk * a[k * inFeatures + j] }
            }
        }
        return d
    }

    static func norm(_ v: [Double]) -> Double { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    /// [rows, columns] row-major -> [columns, rows].
    static func transposed(_ v: [Double], rows: Int, columns: Int) -> [Double] {
        var t = [Double](repeating: 0, count: v.count)
        for r in 0..<rows { for c in 0..<columns { t[c * rows + r] = v[r * columns + c] } }
        return t
    }

    /// (module, ΔW [out, in], W [out, in]) for every LoRA pair of `adapter`.
    static func deltas(_ adapter: Adapter) throws -> [(module: String, delta: [Double], weight: [Double])] {
        let checkpoint = try open(adapter)
        let config = try config(adapter)
        let base = adapter.folder.hasPrefix("pico-gpt2") ? try gpt2Base() : try llamaBase()
        let fanInFanOut = (config["fan_in_fan_out"] as? Bool) == true
        let modules = adapter.shapes.keys.filter { $0.hasSuffix(".lora_A.weight") }
            .map { String($0.dropFirst(prefix.count).dropLast(".lora_A.weight".count)) }.sorted()
        return try modules.map { module in
            let a = try doubles(checkpoint, prefix + module + ".lora_A.weight")
            let b = try doubles(checkpoint, prefix + module + ".lora_B.weight")
            let rank = try #require(checkpoint[prefix + module + ".lora_A.weight"]).shape.dimensions[0]
            let d = delta(a: a, b: b, rank: rank, scaling: try scaling(config, module))
            var w = try doubles(base, module + ".weight")
            if fanInFanOut {
                let stored = try #require(base[module + ".weight"]).shape.dimensions
                w = transposed(w, rows: stored[0], columns: stored[1])
            }
            return (module, d, w)
        }
    }

    @Test("adapter_config.json: PEFT's fields and values, 36 sorted keys, indent 2, no trailing newline")
    func configs() throws {
        for adapter in Self.adapters {
            let text = try Self.configText(adapter)
            #expect(!text.hasSuffix("\n") && text.hasPrefix("{\n  \""), "\(adapter.folder)")
            let topLevel = text.split(separator: "\n").filter { $0.hasPrefix("  \"") }
                .map { $0.dropFirst(3).prefix { $0 != "\"" } }.map(String.init)
            #expect(topLevel.count == 36 && topLevel == topLevel.sorted(), "\(adapter.folder): \(topLevel)")
            let config = try Self.config(adapter)
            #expect(Set(config.keys) == Set(topLevel))
            #expect(config["peft_type"] as? String == "LORA" && config["task_type"] as? String == "CAUSAL_LM", "\(adapter.folder)")
            #expect(config["peft_version"] as? String == "0.18.1" && config["inference_mode"] as? Bool == true)
            #expect(config["bias"] as? String == "none" && config["lora_dropout"] as? Double == 0)
            #expect(config["init_lora_weights"] as? Bool == true && config["megatron_core"] as? String == "megatron.core")
            for key in ["exclude_modules", "layers_to_transform", "layers_pattern", "trainable_token_indices", "layer_replication"] {
                #expect(config[key] is NSNull, "\(adapter.folder): \(key)")
            }
        }
        func expect(_ adapter: Adapter, base: String, r: Int, alpha: Int, targets: [String], rslora: Bool = false, dora: Bool = false,
                    fanInFanOut: Bool = false, loraBias: Bool = false, modulesToSave: [String]? = nil,
                    rankPattern: [String: Int] = [:], alphaPattern: [String: Int] = [:]) throws {
            let c = try Self.config(adapter)
            #expect(c["base_model_name_or_path"] as? String == base, "\(adapter.folder)")
            #expect(c["r"] as? Int == r && c["lora_alpha"] as? Int == alpha, "\(adapter.folder)")
            #expect((c["target_modules"] as? [String]).map(Set.init) == Set(targets), "\(adapter.folder)")
            #expect(c["use_rslora"] as? Bool == rslora && c["use_dora"] as? Bool == dora, "\(adapter.folder)")
            #expect(c["fan_in_fan_out"] as? Bool == fanInFanOut && c["lora_bias"] as? Bool == loraBias, "\(adapter.folder)")
            if let modulesToSave { #expect(c["modules_to_save"] as? [String] == modulesToSave) } else { #expect(c["modules_to_save"] is NSNull) }
            #expect(c["rank_pattern"] as? [String: Int] == rankPattern && c["alpha_pattern"] as? [String: Int] == alphaPattern, "\(adapter.folder)")
        }
        try expect(Self.plain, base: "pico-llama", r: 8, alpha: 16, targets: ["q_proj", "v_proj", "down_proj"],
                   modulesToSave: ["lm_head"], rankPattern: ["down_proj": 4], alphaPattern: ["model.layers.1.self_attn.v_proj": 32])
        try expect(Self.rslora, base: "pico-llama", r: 16, alpha: 8, targets: ["q_proj", "k_proj"], rslora: true)
        try expect(Self.dora, base: "pico-llama", r: 4, alpha: 8, targets: ["o_proj", "up_proj"], dora: true)
        try expect(Self.fanInFanOut, base: "pico-gpt2-conv1d", r: 4, alpha: 8, targets: ["c_attn", "c_fc"], fanInFanOut: true, loraBias: true)

        // The scalings the patterns produce (PEFT's first-match rule), as the README lists them.
        let plain = try Self.config(Self.plain)
        #expect(try Self.scaling(plain, "model.layers.0.self_attn.v_proj") == 2)
        #expect(try Self.scaling(plain, "model.layers.1.self_attn.v_proj") == 4)
        #expect(try Self.scaling(plain, "model.layers.1.mlp.down_proj") == 4)
        #expect(try Self.scaling(plain, "model.layers.1.self_attn.q_proj") == 2)
        #expect(try Self.scaling(Self.config(Self.rslora), "model.layers.0.self_attn.k_proj") == 2)
        #expect(try Self.scaling(Self.config(Self.dora), "model.layers.0.mlp.up_proj") == 2)
        #expect(try Self.scaling(Self.config(Self.fanInFanOut), "transformer.h.0.attn.c_attn") == 2)
    }

    @Test("adapter_model.safetensors: key sets, shapes, dtypes, metadata; every key maps onto a base tensor")
    func keysShapesDTypes() throws {
        for adapter in Self.adapters {
            let checkpoint = try Self.open(adapter)
            #expect(Set(checkpoint.entries.map(\.name)) == Set(adapter.shapes.keys), "\(adapter.folder)")
            #expect(checkpoint.metadataValue("format") == .string("pt") && checkpoint.metadata.count == 1)
            for entry in checkpoint.entries {
                #expect(entry.shape.dimensions == adapter.shapes[entry.name], "\(entry.name)")
                #expect(try TestModelsTests.dense(entry).dtype == adapter.dtype, "\(entry.name)")
            }
            // The PEFT key mapping: strip the prefix, lora_A/lora_B/lora_magnitude_vector -> weight,
            // lora_B.bias -> bias, anything else replaces the base tensor of the same name.
            let base = adapter.folder.hasPrefix("pico-gpt2") ? try Self.gpt2Base() : try Self.llamaBase()
            let fanInFanOut = adapter.folder.hasPrefix("pico-gpt2")
            for entry in checkpoint.entries {
                #expect(entry.name.hasPrefix(Self.prefix))
                let rest = String(entry.name.dropFirst(Self.prefix.count))
                let shape = entry.shape.dimensions
                func baseShape(_ suffix: String, _ replacement: String) throws -> [Int] {
                    try #require(base[String(rest.dropLast(suffix.count)) + replacement], "\(entry.name)").shape.dimensions
                }
                if rest.hasSuffix(".lora_A.weight") {
                    let w = try baseShape(".lora_A.weight", ".weight")
                    #expect(shape[1] == (fanInFanOut ? w[0] : w[1]), "\(entry.name): in of \(w)")
                } else if rest.hasSuffix(".lora_B.weight") {
                    let w = try baseShape(".lora_B.weight", ".weight")
                    #expect(shape[0] == (fanInFanOut ? w[1] : w[0]), "\(entry.name): out of \(w)")
                } else if rest.hasSuffix(".lora_B.bias") {
                    #expect(try baseShape(".lora_B.bias", ".bias") == shape, "\(entry.name)")
                } else if rest.hasSuffix(".lora_magnitude_vector") {
                    #expect(try baseShape(".lora_magnitude_vector", ".weight")[0] == shape[0], "\(entry.name)")
                } else {
                    #expect(rest == "lm_head.weight" && base[rest]?.shape.dimensions == shape, "\(entry.name)")
                }
            }
        }
        // No `.weight` after the DoRA magnitudes, as PEFT saves them.
        #expect(try Self.open(Self.dora).entries.filter { $0.name.contains("lora_magnitude_vector.") }.isEmpty)
        let total = try Self.adapters.map { adapter in
            (try FileManager.default.attributesOfItem(atPath: TestModelsTests.path(adapter.folder + "/adapter_model.safetensors"))[.size] as? NSNumber)?.intValue ?? 0
        }
        #expect(total == [206_464, 58_408, 38_400, 11_752])
    }

    @Test("every lora_B is nonzero and ||scaling·B·A||/||W|| is 1–5 % for every module (README values recomputed in Double)")
    func deltaSizes() throws {
        // README: one value per adapter, to the two decimals printed there.
        let stated: [String: Double] = [
            "model.layers.1.self_attn.v_proj": 3.12, "model.layers.0.mlp.down_proj": 3.75,
            "model.layers.0.self_attn.k_proj": 3.00, "model.layers.1.mlp.up_proj": 3.00,
            "transformer.h.0.attn.c_attn": 1.98,
        ]
        var checked = 0
        for adapter in Self.adapters {
            let checkpoint = try Self.open(adapter)
            for entry in checkpoint.entries where entry.name.hasSuffix(".lora_B.weight") || entry.name.hasSuffix(".lora_B.bias") {
                let values = try TestModelsTests.dense(entry).floats()
                #expect(values.allSatisfy { $0 != 0 && $0.isFinite }, "\(entry.name): zero or non-finite entries")
            }
            for (module, delta, weight) in try Self.deltas(adapter) {
                let ratio = Self.norm(delta) / Self.norm(weight)
                #expect(ratio > 0.01 && ratio < 0.05, "\(adapter.folder) \(module): \(ratio)")
                if let percent = stated[module] {
                    #expect(abs(100 * ratio - percent) <= 0.0051, "\(adapter.folder) \(module): \(100 * ratio) %, README \(percent) %")
                    checked += 1
                }
            }
        }
        #expect(checked == 5)

        // modules_to_save: the saved lm_head is the base plus a 4.74 % change.
        let base = try Self.doubles(Self.llamaBase(), "lm_head.weight")
        let saved = try Self.doubles(Self.open(Self.plain), Self.prefix + "lm_head.weight")
        let change = Self.norm(zip(saved, base).map { $0 - $1 }) / Self.norm(base)
        #expect(abs(100 * change - 4.74) <= 0.0051, "lm_head change \(change)")

        // lora_bias: ||scaling · lora_B.bias|| / ||b|| = 9.99 % for c_attn.
        let bias = try Self.doubles(Self.gpt2Base(), "transformer.h.0.attn.c_attn.bias")
        let loraBias = try Self.doubles(Self.open(Self.fanInFanOut), Self.prefix + "transformer.h.0.attn.c_attn.lora_B.bias")
        #expect(abs(100 * Self.norm(loraBias.map { 2 * $0 }) / Self.norm(bias) - 9.99) <= 0.0051)
    }

    @Test("DoRA magnitudes are the row norms of W + scaling·B·A times 1 ± a few %, so merging rescales rows")
    func doraMagnitudes() throws {
        let checkpoint = try Self.open(Self.dora)
        for (module, delta, weight) in try Self.deltas(Self.dora) {
            let magnitude = try Self.doubles(checkpoint, Self.prefix + module + ".lora_magnitude_vector")
            let columns = weight.count / magnitude.count
            let factors = (0..<magnitude.count).map { o in
                let row = (0..<columns).map { weight[o * columns + $0] + delta[o * columns + $0] }
                return magnitude[o] / Self.norm(row)
            }
            #expect(factors.allSatisfy { $0 > 0.75 && $0 < 1.25 }, "\(module)")
            // visibly different per row: some rows shrink or grow by more than 10 %
            #expect(factors.filter { abs($0 - 1) > 0.1 }.count >= 2, "\(module)")
            let mean = factors.reduce(0, +) / Double(factors.count)
            #expect(abs(mean - 1) < 0.01, "\(module): mean factor \(mean)")
            if module == "model.layers.1.mlp.up_proj" {  // README: 0.844 … 1.164
                #expect(abs(factors.min()! - 0.844) < 0.0006 && abs(factors.max()! - 1.164) < 0.0006, "\(factors.min()!)…\(factors.max()!)")
            }
        }
    }

    @Test("pico-gpt2-conv1d: Conv1D [in, out] weights with outlier input rows, biases and ln_1, F32")
    func gpt2ConvBase() throws {
        let checkpoint = try Self.gpt2Base()
        #expect(Set(checkpoint.entries.map(\.name)) == Set(Self.gpt2Shapes.keys))
        #expect(checkpoint.parameterCount == 45_632 && checkpoint.metadataValue("format") == .string("pt"))
        for entry in checkpoint.entries {
            #expect(entry.shape.dimensions == Self.gpt2Shapes[entry.name], "\(entry.name)")
            #expect(try TestModelsTests.dense(entry).dtype == .f32, "\(entry.name)")
            let values = try Self.doubles(checkpoint, entry.name)
            let mean = values.reduce(0, +) / Double(values.count)
            let std = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)).squareRoot()
            if entry.name.hasSuffix("ln_1.weight") {
                #expect(abs(mean - 1) < 0.01 && std > 0.01 && std < 0.03, "\(entry.name): \(mean) ± \(std)")
            } else if entry.name.hasSuffix(".bias") {
                #expect(abs(mean) < 0.01 && std > 0.01 && std < 0.03, "\(entry.name): \(mean) ± \(std)")
            } else {
                // Stored [in, out]: the outlier input columns of [out, in] are rows here.
                let (rows, columns) = (entry.shape.dimensions[0], entry.shape.dimensions[1])
                let rowRMS = (0..<rows).map { r in (values[(r * columns)..<((r + 1) * columns)].reduce(0) { $0 + $1 * $1 } / Double(columns)).squareRoot() }
                let median = rowRMS.sorted()[rows / 2]
                let outliers = rowRMS.filter { $0 > 4 * median }.count
                #expect(outliers == (entry.name.contains("c_proj") ? 0 : 2), "\(entry.name): \(outliers) outlier rows")
                #expect(median > 0.015 && median < 0.03, "\(entry.name): median row RMS \(median)")
                // ... and the per-output std jitter runs along the columns (0.5x … 1.5x of 0.02).
                let inliers = (0..<rows).filter { rowRMS[$0] <= 4 * median }
                let columnStd = (0..<columns).map { c in (inliers.reduce(0.0) { $0 + values[$1 * columns + c] * values[$1 * columns + c] } / Double(inliers.count)).squareRoot() }
                #expect(columnStd.min()! < 0.013 && columnStd.max()! > 0.027, "\(entry.name): \(columnStd.min()!)…\(columnStd.max()!)")
            }
        }
    }

    @Test("lora_merge_reference.py --self-test: the reference merge agrees with hand computations")
    func referenceSelfTest() throws {
        let script = TestModelsTests.repoRoot.appendingPathComponent("Tests/Interop/lora_merge_reference.py").path
        let result = try PythonRunner.run([script, "--self-test"])
        #expect(result.status == 0, "lora_merge_reference.py --self-test failed (exit \(result.status)):\n\(result.stderr)\(result.stdout)")
        #expect(result.stdout.contains("10 checks passed"), "\(result.stdout)")
    }
}
