import Foundation
import Testing
import TensorCore
import CheckpointFormats
import ModelPress
import TestSupport

/// The committed pico-llama checkpoints in `TestModels/`: names, shapes, dtypes, values, sharding,
/// and that `TestModels/make_test_models.py --check` regenerates them byte for byte.
@Suite("TestModels")
struct TestModelsTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let testModels = repoRoot.appendingPathComponent("TestModels")
    static func path(_ relative: String) -> String { testModels.appendingPathComponent(relative).path }

    static let parameterCount = 853_248
    static let bf16TotalSize = 1_706_496

    /// Every tensor of pico-llama in Hugging Face state-dict order, written out independently of the generator.
    static let expectedShapes: [(name: String, shape: [Int])] = {
        var specs: [(String, [Int])] = [("model.embed_tokens.weight", [128, 256])]
        for n in 0..<2 {
            let p = "model.layers.\(n)."
            specs += [
                (p + "self_attn.q_proj.weight", [256, 256]), (p + "self_attn.k_proj.weight", [128, 256]),
                (p + "self_attn.v_proj.weight", [128, 256]), (p + "self_attn.o_proj.weight", [256, 256]),
                (p + "mlp.gate_proj.weight", [256, 256]), (p + "mlp.up_proj.weight", [256, 256]),
                (p + "mlp.down_proj.weight", [256, 256]),
                (p + "input_layernorm.weight", [256]), (p + "post_attention_layernorm.weight", [256]),
            ]
        }
        specs += [("model.norm.weight", [256]), ("lm_head.weight", [128, 256])]
        return specs
    }()

    /// Checks names, order, shapes, dtypes, totals and metadata of a single-file pico-llama.
    static func expectPicoLlama(_ checkpoint: Checkpoint, dtype: DType, order: [String]) throws {
        #expect(checkpoint.count == 21)
        #expect(checkpoint.entries.map(\.name) == order)
        #expect(Set(checkpoint.entries.map(\.name)) == Set(expectedShapes.map(\.name)))
        for (name, shape) in expectedShapes {
            let entry = try #require(checkpoint[name], "missing \(name)")
            let tensor = try dense(entry)
            #expect(tensor.shape.dimensions == shape, "\(name)")
            #expect(tensor.dtype == dtype, "\(name)")
        }
        #expect(checkpoint.parameterCount == parameterCount)
        #expect(checkpoint.byteCount == parameterCount * dtype.bitsPerElement / 8)
        #expect(checkpoint.metadataValue("format") == .string("pt"))
        #expect(checkpoint.metadata.count == 1)
    }

    struct NotDense: Error, CustomStringConvertible {
        let name: String
        var description: String { "tensor '\(name)' is not a dense tensor" }
    }

    static func dense(_ entry: TensorEntry) throws -> DenseTensor {
        guard case .dense(let t) = entry.payload else { throw NotDense(name: entry.name) }
        return t
    }

    static func uint16s(_ storage: ByteStorage) -> [UInt16] {
        storage.withUnsafeBytes { raw in
            (0..<(raw.count / 2)).map { UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
        }
    }

    /// Checks that config.json describes the checkpoint's shapes.
    static func expectConfig(_ folder: String, torchDType: String, checkpoint: Checkpoint) throws {
        let data = try Data(contentsOf: testModels.appendingPathComponent(folder).appendingPathComponent("config.json"))
        let config = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(config["architectures"] as? [String] == ["LlamaForCausalLM"])
        #expect(config["model_type"] as? String == "llama")
        #expect(config["torch_dtype"] as? String == torchDType)
        let hidden = try #require(config["hidden_size"] as? Int)
        let vocab = try #require(config["vocab_size"] as? Int)
        let heads = try #require(config["num_attention_heads"] as? Int)
        let kvHeads = try #require(config["num_key_value_heads"] as? Int)
        let layers = try #require(config["num_hidden_layers"] as? Int)
        let intermediate = try #require(config["intermediate_size"] as? Int)
        #expect((config["rms_norm_eps"] as? Double).map { $0 > 0 && $0 < 1e-3 } == true)
        #expect(checkpoint["model.embed_tokens.weight"]?.shape.dimensions == [vocab, hidden])
        #expect(checkpoint["lm_head.weight"]?.shape.dimensions == [vocab, hidden])
        #expect(checkpoint["model.layers.0.self_attn.k_proj.weight"]?.shape.dimensions == [kvHeads * hidden / heads, hidden])
        #expect(checkpoint["model.layers.0.mlp.up_proj.weight"]?.shape.dimensions == [intermediate, hidden])
        #expect(checkpoint["model.layers.\(layers - 1).mlp.down_proj.weight"]?.shape.dimensions == [hidden, intermediate])
        #expect(checkpoint["model.layers.\(layers).mlp.down_proj.weight"] == nil)
    }

    @Test("pico-llama-f32: names, shapes, dtypes, parameter count, config and realistic values")
    func f32Model() throws {
        let file = Self.path("pico-llama-f32/model.safetensors")
        let checkpoint = try SafetensorsReader.open(path: file)
        // The reference writer orders tensors of one dtype by name (byte order).
        let sortedNames = Self.expectedShapes.map(\.name).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        try Self.expectPicoLlama(checkpoint, dtype: .f32, order: sortedNames)
        try Self.expectConfig("pico-llama-f32", torchDType: "float32", checkpoint: checkpoint)
        let viaFolder = try CheckpointReader.open(path: Self.path("pico-llama-f32"))
        #expect(viaFolder.entries.map(\.name) == sortedNames)

        for entry in checkpoint.entries {
            let values = try Self.dense(entry).floats()
            let nonFinite = values.filter { !$0.isFinite }.count
            #expect(nonFinite == 0, "\(entry.name)")
            let doubles = values.map(Double.init)
            let mean = doubles.reduce(0, +) / Double(doubles.count)
            let std = (doubles.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(doubles.count)).squareRoot()
            if entry.name.hasSuffix("norm.weight") {
                #expect(abs(mean - 1) < 0.01 && std > 0.005 && std < 0.04, "\(entry.name): mean \(mean), std \(std)")
                let outside = values.filter { $0 < 0.85 || $0 > 1.15 }.count
                #expect(outside == 0, "\(entry.name): \(outside) values outside 0.85...1.15")
            } else {
                #expect(abs(mean) < 0.002 && std > 0.015 && std < 0.035, "\(entry.name): mean \(mean), std \(std)")
            }
        }

        // Outlier input columns: q/k/v/gate/up have 2 columns scaled x8, o/down/lm_head/embeddings none.
        for entry in checkpoint.entries where entry.shape.rank == 2 {
            let values = try Self.dense(entry).floats()
            let rows = entry.shape.rowCount, columns = entry.shape.columnCount
            var columnRMS = [Double](repeating: 0, count: columns)
            for r in 0..<rows { for c in 0..<columns { columnRMS[c] += Double(values[r * columns + c] * values[r * columns + c]) } }
            let sorted = columnRMS.map { ($0 / Double(rows)).squareRoot() }.sorted()
            let median = sorted[columns / 2]
            let outliers = sorted.filter { $0 > 4 * median }.count
            let projection = entry.name.split(separator: ".").dropLast().last.map(String.init) ?? ""
            let expected = ["q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"].contains(projection) ? 2 : 0
            #expect(outliers == expected, "\(entry.name): \(outliers) outlier columns")
        }

        // Per-row std jitter: row standard deviations spread over roughly 0.5x..1.5x of 0.02.
        let o = try Self.dense(try #require(checkpoint["model.layers.1.self_attn.o_proj.weight"])).floats()
        let rowStd = (0..<256).map { r in
            (o[(r * 256)..<((r + 1) * 256)].reduce(0.0) { $0 + Double($1 * $1) } / 256).squareRoot()
        }
        #expect(rowStd.min()! < 0.013 && rowStd.max()! > 0.027, "row std range \(rowStd.min()!)...\(rowStd.max()!)")
    }

    @Test("pico-llama-bf16: same tensors, values are the F32 values rounded with HalfPrecision.bfloat16Bits")
    func bf16Model() throws {
        let f32 = try SafetensorsReader.open(path: Self.path("pico-llama-f32/model.safetensors"))
        let bf16 = try SafetensorsReader.open(path: Self.path("pico-llama-bf16/model.safetensors"))
        try Self.expectPicoLlama(bf16, dtype: .bf16, order: f32.entries.map(\.name))
        try Self.expectConfig("pico-llama-bf16", torchDType: "bfloat16", checkpoint: bf16)
        for entry in f32.entries {
            let source = try Self.dense(entry).floats()
            let stored = try Self.dense(try #require(bf16[entry.name]))
            let rounded = Self.uint16s(stored.storage)
            let expected = source.map(HalfPrecision.bfloat16Bits)
            let mismatches = zip(rounded, expected).filter { $0 != $1 }.count
            #expect(rounded.count == expected.count && mismatches == 0, "\(entry.name): \(mismatches) mismatching elements")
            // And the rounding is not a no-op: the BF16 values differ from the F32 ones somewhere.
            let widened = try stored.floats()
            #expect(widened != source, "\(entry.name)")
        }
    }

    @Test("pico-llama-bf16-sharded: readable via folder and index, identical to the single BF16 file")
    func shardedModel() throws {
        let folder = Self.path("pico-llama-bf16-sharded")
        let index = folder + "/" + ShardedSafetensors.indexFileName
        let detected = try CheckpointFormat.detect(path: folder)
        #expect(detected.format == .shardedSafetensors && detected.path == index)
        #expect(try CheckpointFormat.detect(path: index).format == .shardedSafetensors)
        let single = try SafetensorsReader.open(path: Self.path("pico-llama-bf16/model.safetensors"))

        // Shard 1 holds the embeddings and layer 0; shard 2 holds layer 1, the final norm and lm_head.
        let inFirst = Self.expectedShapes.map(\.name).filter { $0 == "model.embed_tokens.weight" || $0.hasPrefix("model.layers.0.") }
        let inSecond = Self.expectedShapes.map(\.name).filter { !inFirst.contains($0) }
        let byName: (String, String) -> Bool = { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let expectedOrder = inFirst.sorted(by: byName) + inSecond.sorted(by: byName)

        let map = try ShardedSafetensors.weightMap(indexPath: index)
        #expect(map.count == 21)
        #expect(Set(map.filter { $0.shard == "model-00001-of-00002.safetensors" }.map(\.tensor)) == Set(inFirst))
        #expect(Set(map.filter { $0.shard == "model-00002-of-00002.safetensors" }.map(\.tensor)) == Set(inSecond))

        let viaFolder = try CheckpointReader.open(path: folder)
        let viaIndex = try CheckpointReader.open(path: index)
        let direct = try ShardedSafetensors.open(indexPath: index)
        for checkpoint in [viaFolder, viaIndex, direct] {
            try Self.expectPicoLlama(checkpoint, dtype: .bf16, order: expectedOrder)
            for entry in checkpoint.entries {
                let expected = try Self.dense(try #require(single[entry.name])).storage
                #expect(try Self.dense(entry).storage == expected, "\(entry.name)")
            }
        }
        try Self.expectConfig("pico-llama-bf16-sharded", torchDType: "bfloat16", checkpoint: viaFolder)

        // metadata.total_size is the sum of the tensor bytes (headers excluded).
        let data = try Data(contentsOf: URL(fileURLWithPath: index))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let metadata = try #require(json["metadata"] as? [String: Any])
        #expect(metadata["total_size"] as? Int == Self.bf16TotalSize)
        #expect(viaFolder.byteCount == Self.bf16TotalSize)
        let shardSizes = try ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"].map {
            try SafetensorsReader.open(path: folder + "/" + $0).byteCount
        }
        #expect(shardSizes == [852_992, 853_504])
    }

    @Test("CheckpointSummary reads every committed model")
    func summaries() throws {
        for (path, format, bytes) in [
            ("pico-llama-f32", CheckpointFormat.safetensors, Self.parameterCount * 4),
            ("pico-llama-bf16/model.safetensors", .safetensors, Self.parameterCount * 2),
            ("pico-llama-bf16-sharded", .shardedSafetensors, Self.parameterCount * 2),
        ] {
            let summary = try CheckpointSummary(path: Self.path(path))
            #expect(summary.format == format, "\(path)")
            #expect(summary.rows.count == 21, "\(path)")
            #expect(summary.parameterCount == Self.parameterCount, "\(path)")
            #expect(summary.byteCount == bytes, "\(path)")
        }
    }

    @Test("make_test_models.py --check: the committed files regenerate byte for byte")
    func regenerationIsByteIdentical() throws {
        let result = try PythonRunner.run([Self.testModels.appendingPathComponent("make_test_models.py").path, "--check"])
        #expect(result.status == 0, "make_test_models.py --check failed (exit \(result.status)):\n\(result.stderr)\(result.stdout)")
        #expect(result.stdout.contains("19 files byte-identical"), "\(result.stdout)")
    }
}

/// The output of a finished Python process.

