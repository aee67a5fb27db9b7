import Foundation
import Testing
import TensorCore
import CheckpointFormats

/// `TestModels/pico-llama-calibration/calibration.safetensors`: the statistics of a float64 forward
/// pass of pico-llama-f32 on 1,024 synthetic tokens, made by `make_test_models.py` (whose `--check`
/// `TestModelsTests` runs). Hessians are F16, so "equal" below means within F16 rounding: a normal
/// F16 value is within 2⁻¹¹ (relative) of the exact one, a subnormal within 2⁻²⁵ (absolute).
@Suite("TestModels calibration")
struct TestModelsCalibrationTests {
    static let file = TestModelsTests.path("pico-llama-calibration/calibration.safetensors")
    static let gradientsFile = TestModelsTests.path("pico-llama-calibration/gradients.safetensors")
    /// Per-sample gradients: 16 sequences of 64 tokens, each with 63 next-token targets.
    static let (samples, positions, vocab, hidden) = (16, 63, 128, 256)
    static let tokenCount = 1024
    static let calibrationSeed: UInt64 = 0x4361_6C69_6272_6174  // "Calibrat", as in the script
    static let rmsNormEps = 1e-5
    static let f16Rounding = 0x1p-11, f16SubnormalRounding = 0x1p-25, f32Rounding = 0x1p-24

    /// The 15 linear weights of pico-llama (every rank-2 tensor but the embeddings).
    static let linearWeights = TestModelsTests.expectedShapes
        .filter { $0.shape.count == 2 && $0.name != "model.embed_tokens.weight" }.map(\.name)

    /// Weights whose input is an RMSNorm output, with that norm's weight.
    static let normFed: [(weight: String, norm: String)] = (0..<2).flatMap { n in
        [("model.layers.\(n).self_attn.q_proj.weight", "model.layers.\(n).input_layernorm.weight"),
         ("model.layers.\(n).mlp.gate_proj.weight", "model.layers.\(n).post_attention_layernorm.weight")]
    } + [("lm_head.weight", "model.norm.weight")]

    static func statistics() throws -> CalibrationStatistics { try CalibrationStatistics.load(path: file) }

    static func model() throws -> Checkpoint { try SafetensorsReader.open(path: TestModelsTests.path("pico-llama-f32/model.safetensors")) }

    static func floats(_ checkpoint: Checkpoint, _ name: String) throws -> [Float] {
        try TestModelsTests.dense(try #require(checkpoint[name], "missing \(name)")).floats()
    }

    @Test("calibration.safetensors: F16 Hessian and F32 act_sq for each of the 15 linear weights, count 1024")
    func coverage() throws {
        let checkpoint = try SafetensorsReader.open(path: Self.file)
        #expect(checkpoint.count == 30)
        #expect(checkpoint.metadataValue("count") == .string("\(Self.tokenCount)"))
        #expect(checkpoint.metadata.count == 1)
        #expect(Self.linearWeights.count == 15)
        for name in Self.linearWeights {
            let hessian = try TestModelsTests.dense(try #require(checkpoint[name + ".hessian"], "\(name)"))
            let actSq = try TestModelsTests.dense(try #require(checkpoint[name + ".act_sq"], "\(name)"))
            #expect(hessian.dtype == .f16 && hessian.shape.dimensions == [256, 256], "\(name)")
            #expect(actSq.dtype == .f32 && actSq.shape.dimensions == [256], "\(name)")
        }

        let statistics = try Self.statistics()
        for name in Self.linearWeights {
            #expect(statistics.covers(name), "\(name)")
            #expect(try statistics.activationSquares(for: name)?.count == 256, "\(name)")
            #expect(try statistics.hessian(for: name)?.count == 256 * 256, "\(name)")
        }
        // llama.cpp names reach the same statistics; embeddings and norms have none.
        #expect(statistics.covers("blk.1.ffn_down.weight") && statistics.covers("output.weight"))
        #expect(try statistics.hessian(for: "blk.0.attn_q.weight") == statistics.hessian(for: "model.layers.0.self_attn.q_proj.weight"))
        #expect(!statistics.covers("model.embed_tokens.weight") && !statistics.covers("model.norm.weight"))
    }

    @Test("q/k/v_proj of a layer share one input, as do gate/up_proj: bit-identical statistics")
    func sharedInputs() throws {
        let checkpoint = try SafetensorsReader.open(path: Self.file)
        func storage(_ name: String) throws -> ByteStorage { try TestModelsTests.dense(try #require(checkpoint[name], "\(name)")).storage }
        for n in 0..<2 {
            let attention = "model.layers.\(n).self_attn.", mlp = "model.layers.\(n).mlp."
            for suffix in [".weight.hessian", ".weight.act_sq"] {
                let q = try storage(attention + "q_proj" + suffix)
                #expect(try storage(attention + "k_proj" + suffix) == q, "layer \(n) k_proj\(suffix)")
                #expect(try storage(attention + "v_proj" + suffix) == q, "layer \(n) v_proj\(suffix)")
                #expect(try storage(mlp + "up_proj" + suffix) == storage(mlp + "gate_proj" + suffix), "layer \(n) up_proj\(suffix)")
                // Different inputs do differ.
                #expect(try storage(attention + "o_proj" + suffix) != q, "layer \(n) o_proj\(suffix)")
                #expect(try storage(mlp + "gate_proj" + suffix) != q, "layer \(n) gate_proj\(suffix)")
            }
        }
        #expect(try storage("model.layers.0.self_attn.q_proj.weight.hessian") != storage("model.layers.1.self_attn.q_proj.weight.hessian"))
    }

    /// Every Hessian is exactly symmetric (the script symmetrizes before rounding), its diagonal is
    /// act_sq up to F16 rounding, and it is positive semidefinite up to F16 rounding: the rounding
    /// error E has |E_ij| ≤ 2⁻¹¹|H_ij| + 2⁻²⁵, so ‖E‖₂ ≤ ‖E‖_F ≤ δ = 2⁻¹¹‖H‖_F + n·2⁻²⁵, and the stored
    /// H + 2δ·I must be positive definite (the second δ covers the F32 Cholesky's own backward error,
    /// about n·2⁻²⁴·‖H‖₂ = 2⁻¹⁶‖H‖₂ < δ).
    @Test("each Hessian is symmetric, has act_sq on its diagonal and is positive semidefinite up to F16 rounding")
    func hessianShape() throws {
        let statistics = try Self.statistics()
        let checkpoint = try SafetensorsReader.open(path: Self.file)
        let n = 256
        for name in Self.linearWeights {
            let h = try #require(try statistics.hessian(for: name))
            let actSq = try Self.floats(checkpoint, name + ".act_sq")

            var asymmetric = 0
            for i in 0..<n { for j in (i + 1)..<n where h[i * n + j].bitPattern != h[j * n + i].bitPattern { asymmetric += 1 } }
            #expect(asymmetric == 0, "\(name): \(asymmetric) asymmetric pairs")

            // The diagonal entries are normal F16 numbers (the smallest act_sq is 2.2e-4 > 2⁻¹⁴).
            #expect(actSq.allSatisfy { $0 > 0x1p-14 }, "\(name)")
            let mismatches = (0..<n).filter { j in
                abs(Double(h[j * n + j]) - Double(actSq[j])) > Double(actSq[j]) * (Self.f16Rounding + 2 * Self.f32Rounding)
            }
            #expect(mismatches.isEmpty, "\(name): diagonal differs from act_sq at \(mismatches.prefix(5))")
            // ... and no entry exceeds the geometric mean of its diagonal pair by more than rounding (Cauchy–Schwarz).
            var cauchySchwarz = 0
            for i in 0..<n { for j in 0..<n where Double(abs(h[i * n + j])) > (Double(h[i * n + i]) * Double(h[j * n + j])).squareRoot() * (1 + 2 * Self.f16Rounding) + Self.f16SubnormalRounding {
                cauchySchwarz += 1
            } }
            #expect(cauchySchwarz == 0, "\(name): \(cauchySchwarz) entries violate |H_ij| ≤ √(H_ii H_jj)")

            let frobenius = h.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let delta = Self.f16Rounding * frobenius + Double(n) * Self.f16SubnormalRounding
            var damped = h
            for j in 0..<n { damped[j * n + j] += Float(2 * delta) }
            do {
                try LAPACK.choleskyFactor(.lower, n: n, a: &damped, lda: n)
            } catch {
                Issue.record("\(name): H + 2δI (δ = \(delta)) is not positive definite: \(error)")
            }
        }
    }

    /// For an RMSNorm output x = g ⊙ h / √(ms(h) + ε), Σ_j x_j² / g_j² = n · ms/(ms + ε), so
    /// mean_j(act_sq_j / g_j²) is the token mean of r = ms/(ms + ε) ∈ (0, 1), and mean(act_sq) lies
    /// between min(g²)·that and max(g²)·that (g ≈ 1 ± 0.1, so mean(act_sq) ≈ 1). In layer 0 the
    /// residual is an embedding row, so r lies between its smallest and largest value over the 128
    /// rows (≈ 0.968 … 0.981, ms ≈ 4e-4 = 40ε); later the residual only adds attention and MLP
    /// outputs to the embeddings, and r < 0.9 would need ms < 9ε, a cancellation we bound loosely.
    @Test("RMSNorm-fed inputs: mean(act_sq / g²) = mean over tokens of ms/(ms + ε), so mean(act_sq) ≈ 1")
    func normFedMagnitudes() throws {
        let statistics = try Self.statistics()
        let model = try Self.model()
        let embeddings = try Self.floats(model, "model.embed_tokens.weight")
        let rows = (0..<128).map { v in
            let ms = embeddings[(v * 256)..<((v + 1) * 256)].reduce(0.0) { $0 + Double($1) * Double($1) } / 256
            return ms / (ms + Self.rmsNormEps)
        }
        let slack = 2 * Self.f32Rounding
        for (weight, norm) in Self.normFed {
            let actSq = try #require(try statistics.activationSquares(for: weight)).map(Double.init)
            let g2 = try Self.floats(model, norm).map { Double($0) * Double($0) }
            let r = zip(actSq, g2).reduce(0.0) { $0 + $1.0 / $1.1 } / 256
            let (low, high) = norm == "model.layers.0.input_layernorm.weight" ? (rows.min()!, rows.max()!) : (0.9, 1.0)
            #expect(r >= low * (1 - slack) && r <= high * (1 + slack), "\(weight): mean(act_sq/g²) = \(r), expected \(low)...\(high)")
            let mean = actSq.reduce(0, +) / 256
            #expect(mean >= g2.min()! * r * (1 - slack) && mean <= g2.max()! * r * (1 + slack),
                    "\(weight): mean(act_sq) = \(mean), g² in \(g2.min()!)...\(g2.max()!)")
            #expect(abs(mean - 1) < 0.05, "\(weight): mean(act_sq) = \(mean)")
        }
    }

    /// Layer 0's q/k/v input depends only on the token id: x_v = g ⊙ e_v / √(ms(e_v) + ε). With the
    /// token counts c_v of the script's SplitMix64 draw, H = Σ_v c_v x_v x_vᵀ / 1024, recomputed here
    /// in Double from the F32 checkpoint. Only 128 distinct rows, so H has rank 128 < 256 and its
    /// Cholesky fails without damping.
    @Test("layer 0's q_proj statistics, recomputed from the token ids, the embeddings and input_layernorm")
    func layerZeroRecomputed() throws {
        var generator = SeededGenerator(seed: Self.calibrationSeed)
        var counts = [Int](repeating: 0, count: 128)
        for _ in 0..<Self.tokenCount { counts[Int(generator.next() % 128)] += 1 }
        #expect(counts.allSatisfy { $0 > 0 }, "every token id occurs")

        let model = try Self.model()
        let embeddings = try Self.floats(model, "model.embed_tokens.weight")
        let g = try Self.floats(model, "model.layers.0.input_layernorm.weight")
        let n = 256
        var x = [Double](repeating: 0, count: 128 * n)
        for v in 0..<128 {
            let row = embeddings[(v * n)..<((v + 1) * n)]
            let scale = 1 / (row.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(n) + Self.rmsNormEps).squareRoot()
            for (j, e) in row.enumerated() { x[v * n + j] = Double(e) * scale * Double(g[j]) }
        }
        var expected = [Double](repeating: 0, count: n * n)
        x.withUnsafeBufferPointer { x in
            expected.withUnsafeMutableBufferPointer { h in
                for v in 0..<128 {
                    let weight = Double(counts[v]) / Double(Self.tokenCount)
                    for i in 0..<n {
                        let xi = weight * x[v * n + i]
                        for j in 0..<n { h[i * n + j] += xi * x[v * n + j] }
                    }
                }
            }
        }

        let statistics = try Self.statistics()
        let name = "model.layers.0.self_attn.q_proj.weight"
        let stored = try #require(try statistics.hessian(for: name))
        let actSq = try #require(try SafetensorsReader.open(path: Self.file)[name + ".act_sq"])
        let storedActSq = try TestModelsTests.dense(actSq).floats()
        var outside = 0, worst = 0.0
        for k in 0..<(n * n) {
            let error = abs(Double(stored[k]) - expected[k])
            let tolerance = Self.f16Rounding * abs(expected[k]) + Self.f16SubnormalRounding + 1e-12
            if error > tolerance { outside += 1 }
            worst = max(worst, error / max(abs(expected[k]), 1e-3))
        }
        #expect(outside == 0, "\(outside) Hessian entries differ from the recomputation by more than F16 rounding (worst \(worst))")
        let diagonal = (0..<n).filter { j in abs(Double(storedActSq[j]) - expected[j * n + j]) > 2 * Self.f32Rounding * expected[j * n + j] }
        #expect(diagonal.isEmpty, "act_sq differs from the recomputation at \(diagonal.prefix(5))")

        var undamped = stored
        #expect(throws: LinalgError.self, "a rank-128 Hessian must not factor") {
            try LAPACK.choleskyFactor(.lower, n: n, a: &undamped, lda: n)
        }
    }

    // MARK: gradients.safetensors

    @Test("gradients.safetensors: F16 [16, 32768] per-sample gradients of lm_head.weight alone, count 16")
    func gradientsCoverage() throws {
        let checkpoint = try SafetensorsReader.open(path: Self.gradientsFile)
        #expect(checkpoint.entries.map(\.name) == ["lm_head.weight.grads"])
        #expect(checkpoint.metadataValue("count") == .string("\(Self.samples)"))
        #expect(checkpoint.metadata.count == 1)
        let grads = try TestModelsTests.dense(try #require(checkpoint["lm_head.weight.grads"]))
        #expect(grads.dtype == .f16 && grads.shape.dimensions == [Self.samples, Self.vocab * Self.hidden])

        let statistics = try CalibrationStatistics.load(path: Self.gradientsFile)
        let elements = Self.vocab * Self.hidden
        #expect(statistics.covers("lm_head.weight") && statistics.covers("output.weight"))
        #expect(!statistics.covers("model.layers.0.self_attn.q_proj.weight"))
        #expect(try statistics.activationSquares(for: "lm_head.weight") == nil)
        #expect(try statistics.hessian(for: "lm_head.weight") == nil)
        let read = try #require(try statistics.gradients(for: "output.weight", elementCount: elements))
        let stored = try grads.floats()
        #expect(read.samples == Self.samples && read.values == stored)
        #expect(throws: CalibrationError(file: Self.gradientsFile, message: "'lm_head.weight.grads' has 32768 values per sample, but 'lm_head.weight' has 65536 elements")) {
            _ = try statistics.gradients(for: "lm_head.weight", elementCount: 256 * 256)
        }
        // The Hessian file has no gradients.
        #expect(try Self.statistics().gradients(for: "lm_head.weight", elementCount: elements) == nil)
    }

    /// Sample s's gradient is g_s = (1/63) Σ_t e_t h_tᵀ with e_t = softmax(logits_t) − onehot(target_t),
    /// and Σ_c e_tc = 0, so Σ_c g_s[c, j] = 0 for every input column j. The stored F16 value v of an
    /// entry g has |v − g| ≤ 2⁻¹¹|g| + 2⁻²⁵ (normal or subnormal), and |g| ≤ |v|(1 + 2⁻¹⁰) + 2⁻²⁴, so a
    /// column's stored sum is at most 2⁻¹¹(1 + 2⁻¹⁰)Σ_c|v_c| + 128 · 2⁻²⁴ from 0. A transposed or
    /// shuffled layout, or a gradient without the softmax term, fails this by orders of magnitude.
    @Test("every sample's gradient rows sum to 0 in every input column (softmax − onehot sums to 0), within F16 rounding")
    func gradientRowSums() throws {
        let statistics = try CalibrationStatistics.load(path: Self.gradientsFile)
        let (n, rows, columns) = (Self.samples, Self.vocab, Self.hidden)
        let g = try #require(try statistics.gradients(for: "lm_head.weight", elementCount: rows * columns)).values
        #expect(g.allSatisfy { $0.isFinite })
        let zeros = g.filter { $0 == 0 }.count
        #expect(zeros < g.count / 1000, "\(zeros) zero gradient entries")
        for s in 0..<n {
            for r in 0..<s {
                #expect(g[(s * rows * columns)..<((s + 1) * rows * columns)] != g[(r * rows * columns)..<((r + 1) * rows * columns)], "samples \(r) and \(s) are equal")
            }
        }

        var outside: [(Int, Int)] = [], worst = 0.0, typical = 0.0
        for s in 0..<n {
            for j in 0..<columns {
                var sum = 0.0, magnitude = 0.0
                for c in 0..<rows {
                    let v = Double(g[s * rows * columns + c * columns + j])
                    sum += v
                    magnitude += abs(v)
                }
                let bound = Self.f16Rounding * (1 + 0x1p-10) * magnitude + Double(rows) * 0x1p-24
                if abs(sum) > bound { outside.append((s, j)) }
                worst = max(worst, abs(sum) / bound)
                typical += magnitude / Double(n * columns)
            }
        }
        #expect(outside.isEmpty, "\(outside.count) (sample, column) sums exceed F16 rounding, first \(outside.prefix(3)); worst \(worst) of the bound")
        // The property is not vacuous: a column's entries are not all tiny.
        #expect(typical > 0.5, "mean Σ_c |g_s[c, j]| = \(typical)")
    }

    /// Σ_c |e_tc| = 2(1 − p_target) ≤ 2, so Σ_s Σ_c |g_s[c, j]| ≤ (2/63) Σ_{s,t} |h_tj| ≤
    /// (2/63) √(1008 · Σ_{s,t} h_tj²) (Cauchy–Schwarz over the 1,008 positions with a target), and
    /// Σ_{s,t} h_tj² ≤ 1024 · act_sq_j, lm_head's mean squared input over all 1,024 tokens
    /// (`calibration.safetensors`). F16 rounding adds at most 2⁻¹¹ relative plus 2⁻²⁵ per entry, F32
    /// act_sq 2⁻²⁴ relative. Catches a gradient missing its 1/63, or summed over samples.
    @Test("Σ_s Σ_c |g_s[c, j]| ≤ (2/63) √(1008 · 1024 · act_sq_j) with lm_head's act_sq from calibration.safetensors")
    func gradientMagnitudes() throws {
        let (n, rows, columns) = (Self.samples, Self.vocab, Self.hidden)
        let g = try #require(try CalibrationStatistics.load(path: Self.gradientsFile).gradients(for: "lm_head.weight", elementCount: rows * columns)).values
        let actSq = try #require(try Self.statistics().activationSquares(for: "lm_head.weight"))
        let targets = Double(n * Self.positions)
        var ratios: [Double] = []
        for j in 0..<columns {
            var total = 0.0
            for s in 0..<n { for c in 0..<rows { total += abs(Double(g[s * rows * columns + c * columns + j])) } }
            let bound = 2 / Double(Self.positions) * (targets * Double(Self.tokenCount) * Double(actSq[j]) * (1 + Self.f32Rounding)).squareRoot()
            ratios.append(total / (bound * (1 + 2 * Self.f16Rounding) + Double(n * rows) * Self.f16SubnormalRounding))
        }
        #expect(ratios.max()! <= 1, "column \(ratios.firstIndex(of: ratios.max()!)!): \(ratios.max()!) of the bound")
        #expect(ratios.min()! > 0.1, "gradients are far below the bound: \(ratios.min()!)")
    }
}
