import Foundation
import Testing
import TensorCore
import CheckpointFormats
import ModelPress
import TestSupport

/// Interop with gguf-py (llama.cpp's own Python package), driven by `Tests/Interop/gguf_interop.py`:
///
/// * GGUF files written by ModelPress's `convert --type` (through `CheckpointConversion`, in process)
///   are read by `gguf.GGUFReader` with exactly the metadata, tensor names, types and shapes this
///   test expects; `gguf.quants.dequantize` of every tensor equals `GGMLQuantization.dequantize` bit
///   for bit; and for the types gguf-py can quantize, `gguf.quants.quantize` of the source values
///   gives exactly our bytes.
/// * A GGUF file written by gguf-py (every metadata value type, F32, F16 and Q8_0 tensors) is read
///   exactly and re-written byte for byte by `GGUFWriter`.
///
/// The expectations (types per tensor, llama-quantize's tensor order, ftype ids) are written out
/// here independently of `LlamaTensorTypeRules`. By default pico-llama-f32 (853k parameters) is
/// converted to the types that are fast in a debug build plus the Q4_K_M preset, and the small
/// llama-named GGUF to every type; `MODELPRESS_INTEROP_FULL=1` converts pico-llama to every type too.
@Suite("GGUF interop with gguf-py")
struct GGUFInteropTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let script = repoRoot.appendingPathComponent("Tests/Interop/gguf_interop.py").path
    static let pico = repoRoot.appendingPathComponent("TestModels/pico-llama-f32/model.safetensors").path
    static let fullMatrix = ProcessInfo.processInfo.environment["MODELPRESS_INTEROP_FULL"] == "1"

    /// `convert --type` targets and the llama ftype (`general.file_type`) each writes.
    static let targets: [(type: String, fileType: UInt32)] = [
        ("F32", 0), ("F16", 1), ("BF16", 32), ("Q8_0", 7), ("Q4_0", 2), ("Q4_1", 3), ("Q5_0", 8), ("Q5_1", 9),
        ("Q2_K", 10), ("Q3_K", 12), ("Q4_K", 15), ("Q5_K", 17), ("Q6_K", 18), ("Q4_K_M", 15),
    ]
    /// The pico-llama targets of the default run: every type gguf-py can quantize, and the preset.
    static let quickPicoTargets: Set<String> = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K_M"]

    // MARK: JSON for the script

    static func obj(_ members: [(String, JSONValue)]) -> JSONValue { .object(members.map { (key: $0.0, value: $0.1) }) }

    /// A GGUF value as JSON (floats via Double's shortest round-trip text).
    static func json(_ value: GGUFValue) -> JSONValue {
        switch value {
        case .uint8(let v): .integer(v)
        case .int8(let v): .integer(v)
        case .uint16(let v): .integer(v)
        case .int16(let v): .integer(v)
        case .uint32(let v): .integer(v)
        case .int32(let v): .integer(v)
        case .uint64(let v): .integer(v)
        case .int64(let v): .integer(v)
        case .float32(let v): .number("\(Double(v))")
        case .float64(let v): .number("\(v)")
        case .bool(let v): .bool(v)
        case .string(let s): .string(s)
        case .array(_, let values): .array(values.map(json))
        }
    }

    /// `{"key", "type", "sub_type", "value"}` with gguf-py's `GGUFValueType` names.
    static func valueSpec(_ key: String, _ value: GGUFValue) -> JSONValue {
        var members: [(String, JSONValue)] = [("key", .string(key)), ("type", .string(value.type.name.uppercased()))]
        if case .array(let t, _) = value { members.append(("sub_type", .string(t.name.uppercased()))) }
        members.append(("value", json(value)))
        return obj(members)
    }

    struct ScriptFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs the script; throws with its stderr unless it exits 0.
    @discardableResult
    static func runScript(_ arguments: [String], in folder: TemporaryDirectory) throws -> PythonResult {
        let result = try PythonRunner.run([script] + arguments, in: folder)
        guard result.status == 0 else {
            throw ScriptFailure(description: "gguf_interop.py \(arguments.first ?? "") exited \(result.status):\n\(result.stderr)\(result.stdout)")
        }
        return result
    }

    // MARK: The small llama-named model (written by gguf-py)

    /// Tensors in the order gguf-py writes them: (name, numpy shape, offset, scale).
    static let llamaTensors: [(name: String, shape: [Int], offset: Double, scale: Double)] = {
        var t: [(String, [Int], Double, Double)] = [("token_embd.weight", [32, 256], 0, 0.02)]
        for layer in 0..<2 {
            let p = "blk.\(layer)."
            t += [(p + "attn_norm.weight", [256], 1, 0.02), (p + "attn_q.weight", [16, 256], 0, 0.02),
                  (p + "attn_k.weight", [8, 256], 0, 0.02), (p + "attn_v.weight", [8, 256], 0, 0.02),
                  (p + "attn_output.weight", [16, 256], 0, 0.02), (p + "ffn_norm.weight", [256], 1, 0.02),
                  (p + "ffn_gate.weight", [16, 256], 0, 0.03), (p + "ffn_up.weight", [16, 256], 0, 0.03),
                  (p + "ffn_down.weight", [16, 256], 0, 0.02)]
        }
        t += [("output_norm.weight", [256], 1, 0.02), ("output.weight", [32, 256], 0, 0.02), ("rope_freqs.weight", [32], 1, 0.1)]
        return t
    }()

    /// llama-quantize's output order (`weight_name_comparer`): non-`blk.` names sorted, then layer by layer.
    static let llamaOutputOrder: [String] = ["output.weight", "output_norm.weight", "rope_freqs.weight", "token_embd.weight"]
        + (0..<2).flatMap { layer in
            ["attn_k", "attn_norm", "attn_output", "attn_q", "attn_v", "ffn_down", "ffn_gate", "ffn_norm", "ffn_up"].map { "blk.\(layer).\($0).weight" }
        }

    /// The input's metadata after `general.architecture` (which gguf-py writes first).
    static let llamaMetadata: [(String, GGUFValue)] = [
        ("general.name", .string("pico-gguf")),
        ("general.file_type", .uint32(0)),
        ("llama.context_length", .uint32(128)),
        ("llama.embedding_length", .uint32(256)),
        ("llama.block_count", .uint32(2)),
        ("llama.feed_forward_length", .uint32(256)),
        ("llama.attention.head_count", .uint32(4)),
        ("llama.attention.head_count_kv", .uint32(2)),
        ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)),
        ("llama.rope.freq_base", .float32(10_000)),
        ("split.count", .uint16(1)),
        ("tokenizer.ggml.model", .string("llama")),
        ("tokenizer.ggml.tokens", .array(elementType: .string, values: (0..<32).map { .string($0 == 0 ? "<unk>" : "tok\u{2581}\($0)") })),
        ("tokenizer.ggml.scores", .array(elementType: .float32, values: (0..<32).map { .float32(-Float($0) / 4) })),
        ("tokenizer.ggml.token_type", .array(elementType: .int32, values: (0..<32).map { .int32($0 < 3 ? 3 : 1) })),
        ("tokenizer.ggml.bos_token_id", .uint32(1)),
    ]

    /// Writes the small llama GGUF with gguf-py into `folder`; returns its path.
    static func writeLlamaModel(in folder: TemporaryDirectory) throws -> String {
        let tensors: [JSONValue] = llamaTensors.enumerated().map { i, t in
            obj([("name", .string(t.name)), ("shape", .array(t.shape.map { .integer($0) })), ("type", .string("F32")),
                 ("seed", .integer(1000 + i)), ("offset", .number("\(t.offset)")), ("scale", .number("\(t.scale)"))])
        }
        let spec = obj([("arch", .string("llama")), ("metadata", .array(llamaMetadata.map { valueSpec($0.0, $0.1) })), ("tensors", .array(tensors))])
        let specPath = try folder.write(text: JSONWriter.compact(spec), to: "llama-spec.json")
        let path = folder.url("llama-f32.gguf")
        try runScript(["make", specPath, path], in: folder)
        return path
    }

    // MARK: Expectations, written out independently of LlamaTensorTypeRules

    /// The metadata of a converted file: the input's keys without `split.*` and the two keys
    /// llama-quantize sets, which are removed and appended at the end.
    static func expectedMetadata(input: [(String, GGUFValue)], fileType: UInt32) -> [(String, GGUFValue)] {
        input.filter { !$0.0.hasPrefix("split.") && $0.0 != "general.quantization_version" && $0.0 != "general.file_type" }
            + [("general.quantization_version", .uint32(2)), ("general.file_type", .uint32(fileType))]
    }

    /// The ggml type a tensor must have after `--type target`.
    static func expectedType(_ name: String, rank: Int, target: String) -> String {
        guard rank >= 2 else { return "F32" }                        // norms and other 1-D tensors keep F32
        guard target == "Q4_K_M" else { return target }              // a plain type goes to every 2-D weight
        // Q4_K_M (llama_tensor_get_type): output.weight Q6_K; attn_v and ffn_down Q6_K where
        // use_more_bits(i, n) holds, which for n = 2 layers is layer 1 only; everything else Q4_K.
        // pico-llama's Hugging Face names match none of these rules.
        return ["output.weight", "blk.1.attn_v.weight", "blk.1.ffn_down.weight"].contains(name) ? "Q6_K" : "Q4_K"
    }

    /// Converts `input` to `target`, dequantizes every tensor of the result with ModelPress, and
    /// returns the verify-sidecar entry for it.
    static func convertAndDescribe(input: String, source: JSONValue, tag: String, target: (type: String, fileType: UInt32),
                                   inputMetadata: [(String, GGUFValue)], expectedOrder: [(name: String, ne: [Int])],
                                   folder: TemporaryDirectory) throws -> JSONValue {
        let output = folder.url("\(tag)-\(target.type).gguf")
        let quantization = try #require(QuantizationTarget(target.type))
        var conversion = try CheckpointConversion(inputPath: input, outputPath: output,
                                                  options: .init(quantization: quantization, threadCount: 2))
        try conversion.run()
        #expect(conversion.warnings.isEmpty)

        let written = try GGUFReader.open(path: output)
        #expect(written.entries.map(\.name) == expectedOrder.map(\.name), "\(tag) \(target.type): tensor order")
        var tensors: [JSONValue] = []
        for (i, entry) in written.entries.enumerated() {
            let values: [Float] = switch entry.payload {
            case .dense(let t): try t.floats()
            case .ggml(let t): try GGMLQuantization.dequantize(t, name: entry.name, threadCount: 2)
            case .quantized(let t): t.dequantized()
            case .shared(let t): t.expanded()
            }
            let file = folder.url("\(tag)-\(target.type)-\(i).f32")
            try values.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: file)) }
            let expected = expectedOrder.first { $0.name == entry.name }
            let ne = expected?.ne ?? []
            tensors.append(obj([("name", .string(entry.name)), ("type", .string(expectedType(entry.name, rank: ne.count, target: target.type))),
                                ("ne", .array(ne.map { .integer($0) })), ("source_name", .string(entry.name)), ("dequantized", .string(file))]))
        }
        let metadata = expectedMetadata(input: inputMetadata, fileType: target.fileType).map { valueSpec($0.0, $0.1) }
        return obj([("path", .string(output)), ("source", source), ("metadata", .array(metadata)), ("tensors", .array(tensors))])
    }

    // MARK: (a) ModelPress writes, gguf-py reads

    @Test("convert --type output: gguf-py reads the expected metadata and tensors; dequantize and quantize agree bit for bit")
    func convertedFilesMatchGGUFPy() throws {
        let folder = try TemporaryDirectory(prefix: "gguf-interop")
        var files: [JSONValue] = []
        var expectedTensors = 0, expectedRequantized = 0
        let requantizable: Set<String> = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"]

        // pico-llama-f32 (safetensors, Hugging Face names, no general.architecture: input order kept).
        let picoInput = try SafetensorsReader.open(path: Self.pico)
        let picoOrder = picoInput.entries.map { (name: $0.name, ne: Array($0.shape.dimensions.reversed())) }
        #expect(picoOrder.count == 21)
        let picoSource = Self.obj([("format", .string("safetensors")), ("path", .string(Self.pico))])
        for target in Self.targets where Self.fullMatrix || Self.quickPicoTargets.contains(target.type) {
            files.append(try Self.convertAndDescribe(input: Self.pico, source: picoSource, tag: "pico", target: target,
                                                     inputMetadata: [("format", .string("pt"))], expectedOrder: picoOrder, folder: folder))
            expectedTensors += picoOrder.count
            expectedRequantized += picoOrder.filter { requantizable.contains(Self.expectedType($0.name, rank: $0.ne.count, target: target.type)) }.count
        }

        // The llama-named F32 GGUF written by gguf-py: every type, in llama-quantize's tensor order.
        let llama = try Self.writeLlamaModel(in: folder)
        let shapes = Dictionary(uniqueKeysWithValues: Self.llamaTensors.map { ($0.name, Array($0.shape.reversed())) })
        let llamaOrder = try Self.llamaOutputOrder.map { (name: $0, ne: try #require(shapes[$0])) }
        #expect(llamaOrder.count == Self.llamaTensors.count)
        let llamaSource = Self.obj([("format", .string("gguf")), ("path", .string(llama))])
        let llamaInputMetadata = [("general.architecture", GGUFValue.string("llama"))] + Self.llamaMetadata
        for target in Self.targets {
            files.append(try Self.convertAndDescribe(input: llama, source: llamaSource, tag: "llama", target: target,
                                                     inputMetadata: llamaInputMetadata, expectedOrder: llamaOrder, folder: folder))
            expectedTensors += llamaOrder.count
            expectedRequantized += llamaOrder.filter { requantizable.contains(Self.expectedType($0.name, rank: $0.ne.count, target: target.type)) }.count
        }

        let sidecar = try folder.write(text: JSONWriter.compact(Self.obj([("files", .array(files))])), to: "verify.json")
        let result = try Self.runScript(["verify", sidecar], in: folder)
        #expect(result.stdout == "verified \(files.count) files, \(expectedTensors) tensors, \(expectedTensors) dequantized, \(expectedRequantized) requantized\n")
        // Every target is covered, and the Q4_K_M mixture really mixes.
        #expect(files.count == (Self.fullMatrix ? 28 : 23))
        let mixed = try GGUFReader.open(path: folder.url("llama-Q4_K_M.gguf"))
        #expect(Set(mixed.entries.map(\.encodingName)) == ["Q4_K", "Q6_K", "F32"])
    }

    // MARK: (b) gguf-py writes, ModelPress reads and re-writes

    /// Every metadata value type, scalars and arrays (gguf-py cannot write empty arrays).
    static let allValues: [(String, GGUFValue)] = [
        ("t.u8", .uint8(200)), ("t.i8", .int8(-100)), ("t.u16", .uint16(60_000)), ("t.i16", .int16(-30_000)),
        ("t.u32", .uint32(4_000_000_000)), ("t.i32", .int32(-2_000_000_000)), ("t.f32", .float32(-1.5)),
        ("t.f32.small", .float32(1e-5)), ("t.bool.true", .bool(true)), ("t.bool.false", .bool(false)),
        ("t.str", .string("héllo ✓ \u{1F600}")), ("t.str.empty", .string("")),
        ("t.u64", .uint64(.max)), ("t.i64", .int64(.min)), ("t.f64", .float64(0.1)), ("t.f64.negzero", .float64(-0.0)),
        ("t.strings", .array(elementType: .string, values: [.string("a"), .string(""), .string("ccc")])),
        ("t.ints", .array(elementType: .int32, values: [.int32(1), .int32(-2), .int32(.max)])),
        ("t.u8s", .array(elementType: .uint8, values: [.uint8(0), .uint8(255)])),
        ("t.i64s", .array(elementType: .int64, values: [.int64(.max), .int64(-1)])),
        ("t.u64s", .array(elementType: .uint64, values: [.uint64(.max), .uint64(0)])),
        ("t.f32s", .array(elementType: .float32, values: [.float32(0.5), .float32(-2)])),
        ("t.f64s", .array(elementType: .float64, values: [.float64(1e300), .float64(-0.25)])),
        ("t.bools", .array(elementType: .bool, values: [.bool(true), .bool(false), .bool(true)])),
    ]

    struct WrittenTensor: Decodable {
        let name: String
        let type: String
        let ne: [Int]
        let data_hex: String
    }

    struct WrittenSidecar: Decodable {
        let tensors: [WrittenTensor]
    }

    static func bytes(hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var iterator = hex.utf8.makeIterator()
        func nibble(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : c - 0x61 + 10 }
        while let hi = iterator.next(), let lo = iterator.next() { out.append(nibble(hi) << 4 | nibble(lo)) }
        return out
    }

    @Test("a GGUF written by gguf-py (all value types, F32/F16/Q8_0) reads exactly and re-writes byte for byte")
    func ggufPyFileRoundTrip() throws {
        let folder = try TemporaryDirectory(prefix: "gguf-py-written")
        let tensors: [(name: String, shape: [Int], type: String)] = [
            ("a.f32", [3, 64], "F32"), ("b.f16", [40], "F16"), ("blk.0.attn_q.weight", [4, 64], "Q8_0"), ("c.f32", [5], "F32"),
            ("d.f16", [2, 3, 8], "F16"),
        ]
        let tensorSpecs: [JSONValue] = tensors.enumerated().map { i, t in
            Self.obj([("name", .string(t.name)), ("shape", .array(t.shape.map { .integer($0) })), ("type", .string(t.type)),
                      ("seed", .integer(77 + i)), ("scale", .number("0.5"))])
        }
        let spec = Self.obj([("arch", .string("llama")), ("metadata", .array(Self.allValues.map { Self.valueSpec($0.0, $0.1) })),
                             ("tensors", .array(tensorSpecs))])
        let specPath = try folder.write(text: JSONWriter.compact(spec), to: "spec.json")
        let path = folder.url("gguf-py.gguf"), sidecarPath = folder.url("written.json")
        try Self.runScript(["make", specPath, path, sidecarPath], in: folder)
        let written = try JSONDecoder().decode(WrittenSidecar.self, from: Data(contentsOf: URL(fileURLWithPath: sidecarPath)))

        let checkpoint = try GGUFReader.open(path: path)
        let expectedMetadata = [MetadataEntry(key: "general.architecture", value: .gguf(.string("llama")))]
            + Self.allValues.map { MetadataEntry(key: $0.0, value: .gguf($0.1)) }
        #expect(checkpoint.metadata == expectedMetadata)
        #expect(checkpoint.metadataValue("t.f64.negzero") == .gguf(.float64(-0.0)))
        if case .gguf(.float64(let z))? = checkpoint.metadataValue("t.f64.negzero") { #expect(z.sign == .minus) }
        else { Issue.record("t.f64.negzero is missing or not a FLOAT64") }
        #expect(checkpoint.entries.map(\.name) == tensors.map(\.name))
        #expect(written.tensors.map(\.name) == tensors.map(\.name))
        for (entry, (spec, w)) in zip(checkpoint.entries, zip(tensors, written.tensors)) {
            #expect(entry.shape == Shape(spec.shape) && w.ne == spec.shape.reversed(), "\(entry.name)")
            #expect(entry.encodingName == spec.type && w.type == spec.type, "\(entry.name)")
            let stored: ByteStorage = switch entry.payload {
            case .dense(let t): t.storage
            case .ggml(let t): t.storage
            case .quantized, .shared: ByteStorage([])   // these tests never produce them
            }
            #expect(stored.array == Self.bytes(hex: w.data_hex), "\(entry.name): data differs")
        }
        if case .ggml(let q)? = checkpoint["blk.0.attn_q.weight"]?.payload { #expect(q.type == .q8_0 && q.storage.count == 4 * 2 * 34) }
        else { Issue.record("the Q8_0 tensor is not a ggml payload") }

        let original = try TemporaryDirectory.read(path)
        let rewritten = folder.url("rewritten.gguf")
        try GGUFWriter.write(checkpoint, to: rewritten)
        #expect(try TemporaryDirectory.read(rewritten) == original, "GGUFWriter does not reproduce gguf-py's file")
        // `convert` without --type is the same copy.
        let converted = folder.url("converted.gguf")
        var conversion = try CheckpointConversion(inputPath: path, outputPath: converted)
        try conversion.run()
        #expect(try TemporaryDirectory.read(converted) == original, "convert GGUF → GGUF does not reproduce gguf-py's file")
    }
}
