import Foundation
import Testing
import TensorCore
import CheckpointFormats
import Recipes
import TestSupport
@testable import Passes

/// merge.lora on small hand-made adapters: every formula against an independent float64
/// computation, and every bad adapter as an error naming the key.
@Suite("merge.lora")
struct LoRAMergeTests {
    /// Writes a PEFT adapter folder: `config` is the JSON text, tensors are F32 unless a dtype is given.
    static func adapter(_ dir: TemporaryDirectory, _ name: String, config: String, tensors: [(String, [Float], [Int])], dtype: DType = .f32) throws -> String {
        let folder = try dir.makeFolder(name)
        _ = try dir.write(text: config, to: name + "/adapter_config.json")
        let entries = try tensors.map { TensorEntry(name: $0.0, tensor: try DenseTensor(floats: $0.1, shape: Shape($0.2), dtype: dtype)) }
        try SafetensorsWriter.write(try Checkpoint(entries: entries), to: folder + "/adapter_model.safetensors")
        return folder
    }

    /// Binds `text` against `checkpoint` and applies every step to every tensor it selects.
    static func run(_ text: String, on checkpoint: Checkpoint, notes: NoteSink? = nil) throws -> Checkpoint {
        var checkpoint = checkpoint
        let steps = try PassRegistry.builtIn.bind(try RecipeParser.parse(text: text, file: "/r"), manifest: CheckpointManifest(checkpoint))
        var context = PassContext()
        if let notes { context.note = { notes.add($0) } }
        for step in steps {
            for i in step.selected {
                var entry = checkpoint.entries[i]
                try step.pass.apply(to: &entry, context: context)
                checkpoint.replace(at: i, with: entry)
            }
        }
        return checkpoint
    }

    static func floats(_ c: Checkpoint, _ name: String) throws -> [Float] { try denseTensor(c, name).floats() }

    /// `B·A` in float64, `[out, in]`.
    static func product(_ b: [Float], _ a: [Float], out: Int, r: Int, inner: Int) -> [Double] {
        (0..<(out * inner)).map { i in (0..<r).reduce(0.0) { $0 + Double(b[(i / inner) * r + $1]) * Double(a[$1 * inner + i % inner]) } }
    }

    static func close(_ x: [Float], _ y: [Double], _ tolerance: Double = 1e-6) -> Bool {
        x.count == y.count && zip(x, y).allSatisfy { abs(Double($0) - $1) <= tolerance * max(abs($1), 1e-3) }
    }

    let base: Checkpoint
    let w: [Float], v: [Float], bias: [Float]
    init() throws {
        var rng = SeededGenerator(seed: 21)
        w = rng.gaussianFloats(count: 12 * 10, standardDeviation: 0.1)
        v = rng.gaussianFloats(count: 10 * 6, standardDeviation: 0.1)   // a Conv1D weight [in 10, out 6]
        bias = rng.gaussianFloats(count: 6, standardDeviation: 0.1)
        base = try Checkpoint(entries: [
            TensorEntry(name: "m.q.weight", tensor: try DenseTensor(floats: w, shape: Shape([12, 10]))),
            TensorEntry(name: "m.c.weight", tensor: try DenseTensor(floats: v, shape: Shape([10, 6]))),
            TensorEntry(name: "m.c.bias", tensor: try DenseTensor(floats: bias, shape: Shape([6]))),
            TensorEntry(name: "head.weight", tensor: try DenseTensor(floats: [Float](repeating: 1, count: 8), shape: Shape([2, 4]))),
        ])
    }

    @Test("plain, rsLoRA and rank/alpha patterns: W + s·B·A with s = α/r or α/√r, from the pattern that matches first")
    func scaling() throws {
        let dir = try TemporaryDirectory(prefix: "lora")
        var rng = SeededGenerator(seed: 22)
        let a = rng.gaussianFloats(count: 4 * 10), b = rng.gaussianFloats(count: 12 * 4, standardDeviation: 0.05)
        let parts = [("base_model.model.m.q.lora_A.weight", a, [4, 10]), ("base_model.model.m.q.lora_B.weight", b, [12, 4])]
        let ba = Self.product(b, a, out: 12, r: 4, inner: 10)
        let cases: [(String, Double)] = [
            (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8}"#, 2),
            (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "use_rslora": true}"#, 4),
            (#"{"r": 8, "lora_alpha": 8, "rank_pattern": {"k": 2, "q": 4, "m.q": 16}, "alpha_pattern": {"^q": 1, "m\\.q": 12}}"#, 3),
        ]
        for (i, (config, s)) in cases.enumerated() {
            let folder = try Self.adapter(dir, "a\(i)", config: config, tensors: parts)
            let merged = try Self.run("merge.lora adapter=\(folder)", on: base)
            #expect(Self.close(try Self.floats(merged, "m.q.weight"), (0..<120).map { Double(w[$0]) + s * ba[$0] }), "case \(i)")
            #expect(try Self.floats(merged, "m.c.weight") == v, "untargeted tensors are untouched")
        }
    }

    @Test("fan_in_fan_out (Conv1D [in, out]): the delta is transposed; lora_B.bias·s is added to the bias")
    func fanInFanOut() throws {
        let dir = try TemporaryDirectory(prefix: "lora-fifo")
        var rng = SeededGenerator(seed: 23)
        let a = rng.gaussianFloats(count: 2 * 10), b = rng.gaussianFloats(count: 6 * 2, standardDeviation: 0.05), bb = rng.gaussianFloats(count: 6)
        let folder = try Self.adapter(dir, "fifo", config: #"{"r": 2, "lora_alpha": 3, "fan_in_fan_out": true, "lora_bias": true}"#,
                                      tensors: [("base_model.model.m.c.lora_A.weight", a, [2, 10]), ("base_model.model.m.c.lora_B.weight", b, [6, 2]),
                                                ("base_model.model.m.c.lora_B.bias", bb, [6])])
        let merged = try Self.run("merge.lora adapter=\(folder)", on: base)
        let ba = Self.product(b, a, out: 6, r: 2, inner: 10)   // [out 6, in 10]
        #expect(Self.close(try Self.floats(merged, "m.c.weight"), (0..<60).map { i in Double(v[i]) + 1.5 * ba[(i % 6) * 10 + i / 6] }))
        #expect(Self.close(try Self.floats(merged, "m.c.bias"), (0..<6).map { Double(bias[$0]) + 1.5 * Double(bb[$0]) }))
    }

    @Test("DoRA: W' = (m_o/‖V_o‖)·V_o with V = W + s·B·A, per output row")
    func dora() throws {
        let dir = try TemporaryDirectory(prefix: "lora-dora")
        var rng = SeededGenerator(seed: 24)
        let a = rng.gaussianFloats(count: 2 * 10), b = rng.gaussianFloats(count: 12 * 2, standardDeviation: 0.05)
        let m = (0..<12).map { Float(0.5 + 0.1 * Double($0)) }
        let folder = try Self.adapter(dir, "dora", config: #"{"r": 2, "lora_alpha": 4, "use_dora": true}"#,
                                      tensors: [("base_model.model.m.q.lora_A.weight", a, [2, 10]), ("base_model.model.m.q.lora_B.weight", b, [12, 2]),
                                                ("base_model.model.m.q.lora_magnitude_vector", m, [12])])
        let merged = try Self.floats(try Self.run("merge.lora adapter=\(folder)", on: base), "m.q.weight")
        let ba = Self.product(b, a, out: 12, r: 2, inner: 10)
        var expected = (0..<120).map { Double(w[$0]) + 2 * ba[$0] }
        for o in 0..<12 {
            let norm = (0..<10).reduce(0.0) { $0 + expected[o * 10 + $1] * expected[o * 10 + $1] }.squareRoot()
            for j in 0..<10 { expected[o * 10 + j] *= Double(m[o]) / norm }
        }
        #expect(Self.close(merged, expected))
        for o in 0..<12 {   // every row's norm is its magnitude
            let norm = (0..<10).reduce(0.0) { $0 + Double(merged[o * 10 + $1]) * Double(merged[o * 10 + $1]) }.squareRoot()
            #expect(abs(norm - Double(m[o])) < 1e-5)
        }
    }

    @Test("two adapters in one step: W + 0.7·ΔW₁ + 0.3·ΔW₂ exactly, which PEFT's linear combination is not; modules_to_save replaces")
    func weightedSum() throws {
        let dir = try TemporaryDirectory(prefix: "lora-two")
        var rng = SeededGenerator(seed: 25)
        let a1 = rng.gaussianFloats(count: 2 * 10), b1 = rng.gaussianFloats(count: 12 * 2, standardDeviation: 0.05)
        let a2 = rng.gaussianFloats(count: 2 * 10), b2 = rng.gaussianFloats(count: 12 * 2, standardDeviation: 0.05)
        let head: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]
        let one = try Self.adapter(dir, "one", config: #"{"r": 2, "lora_alpha": 2, "modules_to_save": ["head"]}"#,
                                   tensors: [("base_model.model.m.q.lora_A.weight", a1, [2, 10]), ("base_model.model.m.q.lora_B.weight", b1, [12, 2]),
                                             ("base_model.model.head.weight", head, [2, 4])])
        let two = try Self.adapter(dir, "two", config: #"{"r": 2, "lora_alpha": 4}"#,
                                   tensors: [("base_model.model.m.q.lora_A.weight", a2, [2, 10]), ("base_model.model.m.q.lora_B.weight", b2, [12, 2])])
        let merged = try Self.run("merge.lora adapter=\"\(one),\(two)\" weight=0.7,0.3", on: base)
        let d1 = Self.product(b1, a1, out: 12, r: 2, inner: 10), d2 = Self.product(b2, a2, out: 12, r: 2, inner: 10)
        let exact = (0..<120).map { Double(w[$0]) + 0.7 * 1 * d1[$0] + 0.3 * 2 * d2[$0] }
        let q = try Self.floats(merged, "m.q.weight")
        #expect(Self.close(q, exact))
        #expect(try Self.floats(merged, "head.weight") == head)
        // PEFT's linear combination: A' = Σ √(w_i s_i) A_i, B' = Σ √(w_i s_i) B_i; B'A' has cross terms.
        let c1 = Float((0.7 * 1.0).squareRoot()), c2 = Float((0.3 * 2.0).squareRoot())
        let a = (0..<20).map { c1 * a1[$0] + c2 * a2[$0] }, b = (0..<24).map { c1 * b1[$0] + c2 * b2[$0] }
        let linear = Self.product(b, a, out: 12, r: 2, inner: 10)
        let gap = (0..<120).map { abs(Double(w[$0]) + linear[$0] - exact[$0]) }.max()!
        #expect(gap > 1e-3, "PEFT's linear combination differs from the weighted sum by up to \(gap)")
    }

    @Test("a BF16 base: float64 arithmetic, rounded once to BF16")
    func bf16() throws {
        let dir = try TemporaryDirectory(prefix: "lora-bf16")
        let base = try Checkpoint(entries: [TensorEntry(name: "m.q.weight", tensor: try DenseTensor(floats: w, shape: Shape([12, 10]), dtype: .bf16))])
        var rng = SeededGenerator(seed: 26)
        let a = rng.gaussianFloats(count: 3 * 10), b = rng.gaussianFloats(count: 12 * 3, standardDeviation: 0.05)
        let folder = try Self.adapter(dir, "b", config: #"{"r": 3, "lora_alpha": 3}"#,
                                      tensors: [("base_model.model.m.q.lora_A.weight", a, [3, 10]), ("base_model.model.m.q.lora_B.weight", b, [12, 3])], dtype: .bf16)
        let merged = try Self.run("merge.lora adapter=\(folder)", on: base)
        let t = try denseTensor(merged, "m.q.weight")
        #expect(t.dtype == .bf16)
        let w16 = try denseTensor(base, "m.q.weight").floats()
        let a16 = try DenseTensor(floats: a, shape: Shape([3, 10]), dtype: .bf16).floats(), b16 = try DenseTensor(floats: b, shape: Shape([12, 3]), dtype: .bf16).floats()
        let ba = Self.product(b16, a16, out: 12, r: 3, inner: 10)
        // Each value is the BF16 number nearest the float64 result (neither BF16 neighbour is closer).
        for (i, m) in try t.floats().enumerated() {
            let exact = Double(w16[i]) + ba[i]
            let up = Float(bitPattern: m.bitPattern &+ 0x10000), down = Float(bitPattern: m.bitPattern &- 0x10000)
            #expect(abs(Double(m) - exact) <= abs(Double(up) - exact) && abs(Double(m) - exact) <= abs(Double(down) - exact), "element \(i)")
        }
    }

    @Test("bad adapters are errors naming the file and the key", arguments: [
        ("shape", #"{"r": 2, "lora_alpha": 2}"#, [("base_model.model.m.q.lora_A.weight", 2 * 9, [2, 9]), ("base_model.model.m.q.lora_B.weight", 24, [12, 2])],
         "module 'm.q': lora_A [2, 9] and lora_B [12, 2] give a delta of [12, 9], but 'm.q.weight' is [12, 10]"),
        ("absent", #"{"r": 2, "lora_alpha": 2}"#, [("base_model.model.m.k.lora_A.weight", 20, [2, 10]), ("base_model.model.m.k.lora_B.weight", 24, [12, 2])],
         "'base_model.model.m.k.lora_A.weight' updates 'm.k.weight', which the base does not have"),
        ("rank0", #"{"r": 2, "lora_alpha": 2}"#, [("base_model.model.m.q.lora_A.weight", 0, [0, 10]), ("base_model.model.m.q.lora_B.weight", 0, [12, 0])],
         "module 'm.q': rank 0 (lora_A [0, 10])"),
        ("loha", #"{"peft_type": "LORA", "r": 2}"#, [("base_model.model.m.q.hada_w1_a", 24, [12, 2])],
         "'base_model.model.m.q.hada_w1_a' belongs to a PEFT method other than LoRA (hada_…): not supported by merge.lora"),
        ("ia3", #"{"peft_type": "IA3"}"#, [("base_model.model.m.q.ia3_l", 12, [12])], "peft_type IA3 is not supported (merge.lora merges LoRA and DoRA adapters)"),
        ("ranks", #"{"r": 4, "lora_alpha": 2}"#, [("base_model.model.m.q.lora_A.weight", 20, [2, 10]), ("base_model.model.m.q.lora_B.weight", 24, [12, 2])],
         "module 'm.q': the config gives rank 4, the tensors have 2"),
        ("dora", #"{"r": 2, "use_dora": true}"#, [("base_model.model.m.q.lora_A.weight", 20, [2, 10]), ("base_model.model.m.q.lora_B.weight", 24, [12, 2])],
         "module 'm.q': use_dora is true, but there is no lora_magnitude_vector"),
        ("prefix", #"{"r": 2}"#, [("m.q.lora_A.weight", 20, [2, 10])], "key 'm.q.lora_A.weight' does not start with base_model.model. (not a PEFT adapter state dict)"),
        ("alpha", #"{"r": 2, "lora_alpha": "x"}"#, [("base_model.model.m.q.lora_A.weight", 20, [2, 10])], "'lora_alpha' must be a number, found a string"),
    ] as [(String, String, [(String, Int, [Int])], String)])
    func badAdapters(name: String, config: String, tensors: [(String, Int, [Int])], message: String) throws {
        let dir = try TemporaryDirectory(prefix: "lora-bad")
        let folder = try Self.adapter(dir, name, config: config, tensors: tensors.map { ($0.0, [Float](repeating: 0.5, count: $0.1), $0.2) })
        do {
            _ = try Self.run("merge.lora adapter=\(folder)", on: base)
            Issue.record("\(name): no error")
        } catch let error as RecipeDiagnostics {
            #expect(error.diagnostics.count == 1 && error.diagnostics[0].description.contains(message), "\(error)")
            #expect(error.diagnostics[0].description.contains(folder), "names the adapter file: \(error)")
        }
    }

    @Test("a pickled adapter_model.bin is refused; weights must match the adapters; merging comes before quantizing")
    func misuse() throws {
        let dir = try TemporaryDirectory(prefix: "lora-misuse")
        let folder = try dir.makeFolder("bin")
        _ = try dir.write(text: #"{"r": 2}"#, to: "bin/adapter_config.json")
        _ = try dir.write([0x80, 0x02], to: "bin/adapter_model.bin")
        func message(_ text: String) -> String {
            do { _ = try Self.run(text, on: base); return "" } catch { return "\(error)" }
        }
        #expect(message("merge.lora adapter=\(folder)").contains("adapter_model.bin: PyTorch pickle adapters are not read"))
        let good = try Self.adapter(dir, "good", config: #"{"r": 1, "lora_alpha": 1}"#,
                                    tensors: [("base_model.model.m.q.lora_A.weight", [Float](repeating: 0.1, count: 10), [1, 10]), ("base_model.model.m.q.lora_B.weight", [Float](repeating: 0.1, count: 12), [12, 1])])
        #expect(message("merge.lora adapter=\(good) weight=0.5,0.5").contains("give one finite weight per adapter"))
        #expect(message("merge.lora").contains("merge.lora: needs adapter=DIR"))
        #expect(message("quantize.int bits=8 targets=m.q.weight\nmerge.lora adapter=\(good)").contains("merge adapters first"))
        #expect(message("merge.lora adapter=\(good)\nmerge.lora adapter=\(good) weight=-1\nquantize.int bits=8 targets=m.q.weight").isEmpty)
    }
}

/// Notes from passes (one thread at a time in these tests).
final class NoteSink: @unchecked Sendable {
    private(set) var lines: [String] = []
    func add(_ line: String) { lines.append(line) }
}
