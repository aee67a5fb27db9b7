import Testing
import TensorCore
import CheckpointFormats
@testable import Passes

@Suite("oBERT (Fisher OBS)")
struct FisherPrunerTests {
    typealias S = PruningTestSupport

    /// Gradients [m, n] and the Fisher they define, λI + GᵀG/m (float64).
    static func fisher(samples m: Int, n: Int, damping: Double, seed: UInt64) -> (g: [Float], f: [Double]) {
        var rng = SeededGenerator(seed: seed)
        let base = rng.gaussianFloats(count: m * n)
        // Correlated coordinates: each gradient mixes its neighbours.
        var g = base
        for s in 0..<m { for i in 1..<n { g[s * n + i] = 0.6 * g[s * n + i - 1] + base[s * n + i] } }
        var f = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            f[i * n + i] = damping
            for j in 0..<n { for s in 0..<m { f[i * n + j] += Double(g[s * n + i]) * Double(g[s * n + j]) / Double(m) } }
        }
        return (g, f)
    }

    @Test("the Woodbury recursion gives the inverse of λI + (1/m)Σ g gᵀ")
    func woodbury() {
        let (g, f) = Self.fisher(samples: 40, n: 10, damping: 0.05, seed: 1)
        let pruner = FisherPruner(target: PruningTarget(sparsity: 0.5), blockSize: 10, damping: 0.05)
        let inverse = pruner.blockInverse(start: 0, size: 10, n: 10, gradients: g, samples: 40)
        let expected = S.inverse(f, n: 10)
        for i in 0..<100 { #expect(abs(inverse[i] - expected[i]) < 1e-9 * max(1, abs(expected[i]))) }
    }

    @Test("with a Fisher equal to a known matrix K, oBERT is block OBS with K: mask by w²/[K⁻¹]_qq, update −K⁻¹[:,Q]([K⁻¹]_QQ)⁻¹w_Q")
    func matchesOBS() {
        let n = 12
        let (g, k) = Self.fisher(samples: 30, n: n, damping: 0.01, seed: 2)
        var rng = SeededGenerator(seed: 3)
        let w = rng.gaussianFloats(count: n)
        let pruned = FisherPruner(target: PruningTarget(sparsity: 4.0 / 12.0), blockSize: n, damping: 0.01)
            .prune(w, shape: Shape([2, 6]), gradients: g, samples: 30)
        let kInverse = S.inverse(k, n: n)
        let saliency = (0..<n).map { Double(w[$0]) * Double(w[$0]) / kInverse[$0 * n + $0] }
        let removed = (0..<n).sorted { saliency[$0] < saliency[$1] }.prefix(4).sorted()
        #expect(pruned.mask == (0..<n).map { removed.contains($0) })
        // δw = −K⁻¹[:,Q] (K⁻¹_QQ)⁻¹ w_Q
        let block = S.inverse(removed.flatMap { i in removed.map { j in kInverse[i * n + j] } }, n: 4)
        let x = (0..<4).map { p in (0..<4).reduce(0.0) { $0 + block[p * 4 + $1] * Double(w[removed[$1]]) } }
        for i in 0..<n {
            let expected = Double(w[i]) - (0..<4).reduce(0.0) { $0 + kInverse[i * n + removed[$1]] * x[$1] }
            if removed.contains(i) {
                #expect(pruned.values[i] == 0)
                #expect(abs(expected) < 1e-9, "the optimal update itself takes w_q to 0")
            } else {
                #expect(abs(Double(pruned.values[i]) - expected) < 1e-5 * max(1, abs(expected)), "\(i): \(pruned.values[i]) vs \(expected)")
            }
        }
    }

    @Test("exact sparsity with blocks straddling rows, N:M along rows, and the same result on 1 or 2 threads")
    func exactness() {
        let rows = 6, columns = 40, n = rows * columns
        let (g, _) = Self.fisher(samples: 16, n: n, damping: 1e-4, seed: 4)
        var rng = SeededGenerator(seed: 5)
        let w = rng.gaussianFloats(count: n)
        let one = FisherPruner(target: PruningTarget(sparsity: 0.5), blockSize: 50, damping: 1e-4).prune(w, shape: Shape([rows, columns]), gradients: g, samples: 16, threadCount: 1)
        let two = FisherPruner(target: PruningTarget(sparsity: 0.5), blockSize: 50, damping: 1e-4).prune(w, shape: Shape([rows, columns]), gradients: g, samples: 16, threadCount: 2)
        #expect(one.values.filter { $0 == 0 }.count == 120 && one.values == two.values)
        let nm = FisherPruner(target: PruningTarget(sparsity: 0.5, pattern: .nOfM(kept: 2, group: 4)), blockSize: 50, damping: 1e-4)
            .prune(w, shape: Shape([rows, columns]), gradients: g, samples: 16)
        for s in stride(from: 0, to: n, by: 4) { #expect(nm.values[s..<(s + 4)].filter { $0 == 0 }.count == 2) }
    }
}
