import Foundation
import Testing
import TensorCore
import CheckpointFormats
import Recipes
import TestSupport
@testable import Passes

/// share.rps: the map against fixed vectors, exactness at ratio 1, the least-squares optimum and its
/// analytic error, RANDOMFOLD's 1 − 1/ratio, weighting, determinism, and an independent
/// reconstruction of the stored form.
@Suite("share.rps")
struct RPSSharingTests {
    /// Binds, plans and applies a one-step recipe to every selected tensor.
    static func run(_ text: String, on checkpoint: Checkpoint, calibration: CalibrationStatistics? = nil, threads: Int = 1) throws -> Checkpoint {
        var checkpoint = checkpoint
        let steps = try PassRegistry.builtIn.bind(try RecipeParser.parse(text: text, file: "r"), manifest: CheckpointManifest(checkpoint))
        var context = PassContext(threadCount: threads, calibration: calibration)
        for step in steps {
            try step.pass.plan(checkpoint, selected: step.selected, consumers: [:], context: &context)
            for i in step.selected {
                var entry = checkpoint.entries[i]
                try step.pass.apply(to: &entry, context: context)
                checkpoint.replace(at: i, with: entry)
            }
        }
        return checkpoint
    }

    static func shared(_ c: Checkpoint, _ name: String) throws -> SharedTensor {
        guard case .shared(let t)? = c[name]?.payload else { throw PassError(pass: "test", tensor: name, message: "not shared") }
        return t
    }

    /// The spec written out again with plain UInt64 arithmetic (algorithms.md §5.5), independent of
    /// `RandomFoldMap`.
    static func specSlot(seed: UInt64, m: UInt64, chunk: UInt64, _ i: UInt64) -> (Int, Float) {
        func mix(_ x: UInt64) -> UInt64 {
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
            z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
            return z ^ (z >> 31)
        }
        func h(_ k: UInt64, _ x: UInt64) -> UInt64 { mix(x &+ seed &* 0x9E3779B97F4A7C15 &+ k) }
        let start = UInt64((UInt128(h(1, i / chunk)) * UInt128(m)) >> 64)
        return (Int((i % chunk + start) % m), h(2, i) >> 63 == 1 ? -1 : 1)
    }

    @Test("the map matches fixed vectors (computed with Python integers) and the spec's formula")
    func vectors() {
        let cases: [(UInt64, Int, Int, [(Int, Int, Float)])] = [
            (0, 1000, 1000, [(0, 338, -1), (1, 339, 1), (999, 337, 1), (1000, 858, -1), (123456789, 171, 1)]),
            (42, 7, 7, [(0, 4, 1), (1, 5, -1), (999, 6, 1), (1000, 0, -1), (123456789, 6, -1)]),
            (12345678901234567890, 1000, 16, [(0, 932, -1), (1, 933, -1), (999, 27, -1), (1000, 28, 1), (123456789, 86, 1)]),
        ]
        for (seed, m, chunk, points) in cases {
            let map = RandomFoldMap(seed: seed, slotCount: m, chunk: chunk)
            for (i, slot, sign) in points {
                #expect(map.slot(i) == slot && map.sign(i) == sign, "seed \(seed) i \(i)")
                #expect(Self.specSlot(seed: seed, m: UInt64(m), chunk: UInt64(chunk), UInt64(i)) == (slot, sign))
            }
        }
    }

    static func gaussian(_ count: Int, seed: UInt64, sd: Float = 1) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return rng.gaussianFloats(count: count, standardDeviation: sd)
    }

    @Test("ratio 1 gives every weight back bit for bit (F32 and BF16 sources, two tensors of different scale)")
    func exactAtOne() throws {
        for dtype in [DType.f32, .bf16] {
            let a = Self.gaussian(64 * 48, seed: 1, sd: 0.02), b = Self.gaussian(32 * 48, seed: 2, sd: 3)
            let original = try Checkpoint(entries: [TensorEntry(name: "a.weight", tensor: try DenseTensor(floats: a, shape: Shape([64, 48]), dtype: dtype)),
                                                    TensorEntry(name: "b.weight", tensor: try DenseTensor(floats: b, shape: Shape([32, 48]), dtype: dtype))])
            let shared = try Self.run("share.rps ratio=1 seed=7", on: original)
            for name in ["a.weight", "b.weight"] {
                #expect(try Self.shared(shared, name).expanded() == denseTensor(original, name).floats(), "\(dtype) \(name)")
            }
            #expect(try Self.shared(shared, "a.weight").map.slotCount == 64 * 48 + 32 * 48)
        }
    }

    @Test("RANDOMFOLD on N(0,1) loses 1 − 1/ratio of the energy (algorithms.md §5.4: 0.500 at 2, 0.750 at 4)")
    func energyLost() throws {
        let w = Self.gaussian(1 << 20, seed: 3)
        let original = try Checkpoint(entries: [TensorEntry(name: "w.weight", tensor: try DenseTensor(floats: w, shape: Shape([1024, 1024])))])
        for (ratio, expected) in [(2.0, 0.5), (4.0, 0.75)] {
            let r = try Self.shared(try Self.run("share.rps ratio=\(ratio) force=true", on: original), "w.weight").expanded()
            var num = 0.0, den = 0.0
            for (x, y) in zip(w, r) { num += Double(x - y) * Double(x - y); den += Double(x) * Double(x) }
            #expect(abs(num / den - expected) < 0.002, "ratio \(ratio): \(num / den)")
        }
    }

    @Test("the slots are the weighted least-squares optimum: the error equals Σ_k (Σdw² − (Σdλgw)²/Σdλ²), and moving any slot raises it")
    func leastSquares() throws {
        let dir = try TemporaryDirectory(prefix: "rps-ls")
        let w = Self.gaussian(40 * 24, seed: 4, sd: 0.05)
        let d = (0..<24).map { Float(exp(Double($0 % 5) - 2)) }
        let calibrationPath = dir.url("c.safetensors")
        try SafetensorsWriter.write(try Checkpoint(entries: [TensorEntry(name: "w.weight.act_sq", tensor: try DenseTensor(floats: d, shape: Shape([24])))]), to: calibrationPath)
        let statistics = try CalibrationStatistics.load(path: calibrationPath)
        let original = try Checkpoint(entries: [TensorEntry(name: "w.weight", tensor: try DenseTensor(floats: w, shape: Shape([40, 24])))])
        let view = try Self.shared(try Self.run("share.rps ratio=3 force=true weighting=hessian chunk=5", on: original, calibration: statistics), "w.weight")
        let lambda = Double(view.scale), m = view.map.slotCount
        var sdw2 = [Double](repeating: 0, count: m), sdlgw = sdw2, sdl2 = sdw2
        for i in w.indices {
            let k = view.map.slot(i), di = Double(d[i % 24]), g = Double(view.map.sign(i))
            sdw2[k] += di * Double(w[i]) * Double(w[i]); sdlgw[k] += di * lambda * g * Double(w[i]); sdl2[k] += di * lambda * lambda
        }
        var analytic = 0.0
        for k in 0..<m {
            let explained: Double = sdl2[k] > 0 ? sdlgw[k] * sdlgw[k] / sdl2[k] : 0
            analytic += sdw2[k] - explained
        }
        func error(_ slots: [Float]) -> Double {
            var sum = 0.0
            for i in w.indices {
                let r: Double = lambda * Double(view.map.sign(i)) * Double(slots[view.map.slot(i)])
                let e: Double = Double(w[i]) - r
                sum += Double(d[i % 24]) * e * e
            }
            return sum
        }
        let measured = error(view.slots)
        #expect(abs(measured - analytic) < 1e-5 * analytic, "measured \(measured), analytic \(analytic)")
        for k in [view.map.slot(0), view.map.slot(w.count / 2), view.map.slot(w.count - 1)] {   // occupied slots
            var moved = view.slots
            moved[k] += 1e-3
            #expect(error(moved) > measured)
        }
    }

    @Test("weighting by the Hessian diagonal lowers the output error against the unweighted projection")
    func weighting() throws {
        let dir = try TemporaryDirectory(prefix: "rps-weight")
        let w = Self.gaussian(64 * 64, seed: 5, sd: 0.02)
        var rng = SeededGenerator(seed: 6)
        let d = (0..<64).map { _ in Float(exp(1.5 * rng.nextGaussian())) }
        let calibrationPath = dir.url("c.safetensors")
        try SafetensorsWriter.write(try Checkpoint(entries: [TensorEntry(name: "w.weight.act_sq", tensor: try DenseTensor(floats: d, shape: Shape([64])))]), to: calibrationPath)
        let statistics = try CalibrationStatistics.load(path: calibrationPath)
        let original = try Checkpoint(entries: [TensorEntry(name: "w.weight", tensor: try DenseTensor(floats: w, shape: Shape([64, 64])))])
        func outputError(_ text: String) throws -> Double {
            let r = try Self.shared(try Self.run(text, on: original, calibration: statistics), "w.weight").expanded()
            var num = 0.0, den = 0.0
            for i in w.indices { let dj = Double(d[i % 64]); num += dj * Double(w[i] - r[i]) * Double(w[i] - r[i]); den += dj * Double(w[i]) * Double(w[i]) }
            return num / den
        }
        let plain = try outputError("share.rps ratio=2"), weighted = try outputError("share.rps ratio=2 weighting=hessian")
        #expect(weighted < 0.85 * plain, "weighted \(weighted), unweighted \(plain)")
    }

    @Test("identical at 1 and 2 threads and across runs; a ratio above 2 needs force=true")
    func determinism() throws {
        let w = Self.gaussian(96 * 32, seed: 8)
        let original = try Checkpoint(entries: [TensorEntry(name: "w.weight", tensor: try DenseTensor(floats: w, shape: Shape([96, 32])))])
        let a = try Self.shared(try Self.run("share.rps ratio=2 seed=3", on: original, threads: 1), "w.weight")
        let b = try Self.shared(try Self.run("share.rps ratio=2 seed=3", on: original, threads: 2), "w.weight")
        let c = try Self.shared(try Self.run("share.rps ratio=2 seed=3", on: original, threads: 2), "w.weight")
        #expect(a == b && b == c)
        do {
            _ = try Self.run("share.rps ratio=3", on: original)
            Issue.record("no error")
        } catch let error as RecipeDiagnostics {
            #expect(error.description.contains("ratio=3.0 loses about 67% of the weights' energy without retraining; add force=true"), "\(error)")
        }
    }

    @Test("expand(compress(W)) equals a straightforward reconstruction from the stored slots, scales and seed (the spec's formula, written in the test)")
    func reconstruction() throws {
        let a = Self.gaussian(48 * 40, seed: 9, sd: 0.1), b = Self.gaussian(16 * 40, seed: 10, sd: 2)
        let original = try Checkpoint(entries: [TensorEntry(name: "a.weight", tensor: try DenseTensor(floats: a, shape: Shape([48, 40]))),
                                                TensorEntry(name: "b.weight", tensor: try DenseTensor(floats: b, shape: Shape([16, 40])))])
        let shared = try Self.run("share.rps ratio=1.7 seed=99 chunk=64", on: original)
        let va = try Self.shared(shared, "a.weight"), vb = try Self.shared(shared, "b.weight")
        #expect(va.slots == vb.slots && va.offset == 0 && vb.offset == 48 * 40 && va.map.slotCount == Int((2560.0 / 1.7).rounded(.up)))
        for view in [va, vb] {
            let m = UInt64(view.map.slotCount)
            let direct: [Float] = (0..<view.shape.elementCount).map { j in
                let (slot, sign) = Self.specSlot(seed: 99, m: m, chunk: 64, UInt64(view.offset + j))
                return view.scale * sign * view.slots[slot]
            }
            #expect(view.expanded() == direct && view.expanded(threadCount: 2) == direct)
        }
        #expect(va.scale == 0.125 && vb.scale == 2, "powers of two nearest the RMS (0.1 → 2⁻³, 2 → 2¹)")
    }
}
