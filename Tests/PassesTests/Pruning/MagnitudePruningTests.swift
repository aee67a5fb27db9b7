import Testing
import TensorCore
import CheckpointFormats
import Recipes
@testable import Passes

@Suite("prune.magnitude")
struct MagnitudePruningTests {
    typealias S = PruningTestSupport

    @Test("layer scope removes exactly round(p·n) of the smallest |w| and keeps the dtype and the other values", arguments: [0.5, 0.75, 0.3])
    func exactSparsity(sparsity: Double) throws {
        var rng = SeededGenerator(seed: 1)
        let w = rng.gaussianFloats(count: 512 * 512)
        var entry = try S.entry(w, [512, 512], dtype: .bf16)
        let original = try S.values(entry)
        let pass = try S.pass("prune.magnitude sparsity=\(sparsity)", shape: Shape([512, 512]))
        try pass.apply(to: &entry, context: PassContext())
        let p = try S.values(entry)
        guard case .dense(let t) = entry.payload else { return }
        #expect(t.dtype == .bf16 && entry.sparsity == .unstructured)
        let zeros = p.filter { $0 == 0 }.count
        #expect(zeros == Int((sparsity * 512 * 512).rounded()))
        let largestPruned = zip(original, p).filter { $0.1 == 0 }.map { abs($0.0) }.max()!
        let smallestKept = zip(original, p).filter { $0.1 != 0 }.map { abs($0.0) }.min()!
        #expect(largestPruned <= smallestKept)
        #expect(zip(original, p).allSatisfy { $0.1 == 0 || $0.0 == $0.1 }, "kept weights are untouched")
    }

    @Test("weight-space error on N(0,1) matches algorithms.md §4.1: 0.071 at 50%, 0.276 keeping 1/4")
    func gaussianError() throws {
        var rng = SeededGenerator(seed: 2)
        let w = rng.gaussianFloats(count: 1024 * 1024)
        for (sparsity, expected) in [(0.5, 0.071), (0.75, 0.276)] {
            var entry = try S.entry(w, [1024, 1024])
            try S.pass("prune.magnitude sparsity=\(sparsity)", shape: Shape([1024, 1024])).apply(to: &entry, context: PassContext())
            let e = S.weightError(w, try S.values(entry))
            #expect(abs(e - expected) < 0.05 * expected, "\(sparsity): \(e)")
        }
    }

    @Test("N:M keeps the N largest of every M consecutive weights of each row", arguments: [(2, 4), (4, 8), (1, 4)])
    func nOfM(kept: Int, group: Int) throws {
        var rng = SeededGenerator(seed: 4)
        let w = rng.gaussianFloats(count: 16 * 64)
        var entry = try S.entry(w, [16, 64])
        try S.pass("prune.magnitude pattern=\(kept):\(group)", shape: Shape([16, 64])).apply(to: &entry, context: PassContext())
        let p = try S.values(entry)
        #expect(entry.sparsity == .nOfM(kept: kept, group: group))
        for g in stride(from: 0, to: w.count, by: group) {
            let survivors = (g..<(g + group)).filter { p[$0] != 0 }
            #expect(survivors.count == kept)
            let largest = (g..<(g + group)).sorted { abs(w[$0]) > abs(w[$1]) }.prefix(kept)
            #expect(Set(survivors) == Set(largest))
        }
        #expect(p.filter { $0 != 0 }.count == w.count * kept / group)
    }

    @Test("global scope: exactly round(p·Σn) over all tensors, one threshold, ties to the earlier tensor")
    func global() throws {
        var rng = SeededGenerator(seed: 5)
        let a = rng.gaussianFloats(count: 64 * 64), b = rng.gaussianFloats(count: 64 * 64, standardDeviation: 0.3)
        var checkpoint = try Checkpoint(entries: [try S.entry(a, [64, 64], name: "a.weight"), try S.entry(b, [64, 64], name: "b.weight")])
        let recipe = try RecipeParser.parse(text: "prune.magnitude sparsity=40% scope=global", file: "r")
        let step = try PassRegistry.builtIn.bind(recipe, manifest: CheckpointManifest(checkpoint))[0]
        var context = PassContext()
        try step.pass.plan(checkpoint, selected: step.selected, consumers: [:], context: &context)
        for i in step.selected {
            var entry = checkpoint.entries[i]
            try step.pass.apply(to: &entry, context: context)
            checkpoint.replace(at: i, with: entry)
        }
        let pa = try S.values(checkpoint.entries[0]), pb = try S.values(checkpoint.entries[1])
        let za = pa.filter { $0 == 0 }.count, zb = pb.filter { $0 == 0 }.count
        #expect(za + zb == Int((0.4 * 8192).rounded()))
        #expect(zb > 2 * za, "the small-scale tensor loses more (\(za) vs \(zb))")
        let pruned = zip(a + b, pa + pb).filter { $0.1 == 0 }.map { abs($0.0) }, kept = zip(a + b, pa + pb).filter { $0.1 != 0 }.map { abs($0.0) }
        #expect(pruned.max()! <= kept.min()!)

        // All values equal: the first tensor goes first.
        var equal = try Checkpoint(entries: [try S.entry([Float](repeating: 1, count: 10), [2, 5], name: "a.weight"),
                                             try S.entry([Float](repeating: 1, count: 10), [2, 5], name: "b.weight")])
        var tieContext = PassContext()
        try step.pass.plan(equal, selected: [0, 1], consumers: [:], context: &tieContext)
        for i in 0..<2 {
            var entry = equal.entries[i]
            try step.pass.apply(to: &entry, context: tieContext)
            equal.replace(at: i, with: entry)
        }
        #expect(try S.values(equal.entries[0]) == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
        #expect(try S.values(equal.entries[1]) == [Float](repeating: 1, count: 10))
    }

    @Test("recipe errors: a sparsity an N:M pattern contradicts, a global N:M, a bad pattern, pruning after quantizing or allocating")
    func recipeErrors() {
        func messages(_ text: String) -> [String] {
            do { _ = try PassRegistryTests.bind(text); return [] } catch { return error.diagnostics.map(\.description) }
        }
        #expect(messages("prune.magnitude sparsity=60% pattern=2:4").first?.contains("pattern=2:4 keeps 2 of every 4 weights, a sparsity of 50.0%") == true)
        #expect(messages("prune.magnitude sparsity=50% pattern=2:4").isEmpty)
        #expect(messages("prune.magnitude pattern=2:4 scope=global").first?.contains("scope=global needs pattern=unstructured") == true)
        #expect(messages("prune.magnitude pattern=4:2").first?.contains("is not unstructured or N:M") == true)
        #expect(messages("prune.magnitude pattern=3:7").first?.contains("rows of 256 weights do not split into groups of 7") == true)
        #expect(messages("quantize.int bits=4\nprune.magnitude").first?.contains("is already compressed by the step at r:1:1; prune before quantizing") == true)
        #expect(messages("prune.magnitude\nprune.wanda").first?.contains("is already pruned by the step at r:1:1") == true)
        #expect(messages("allocate.bits average=4 proxy=weights\nprune.magnitude\nquantize.int bits=auto").first?.contains("prune before allocating bits") == true)
        #expect(messages("prune.magnitude\nallocate.bits average=4 proxy=weights\nquantize.int bits=auto").isEmpty)
        #expect(messages("prune.magnitude sparsity=50%\nquantize.int bits=4").isEmpty)
    }
}
