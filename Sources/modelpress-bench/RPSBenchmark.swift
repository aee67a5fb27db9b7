import Foundation
import TensorCore
import CheckpointFormats
import Recipes
import Passes

/// `share.rps ratio=2` over one [4096, 4096] F32 weight: the projection (two passes over the
/// weights, hashing each index, plus one pass that measures the energy lost) and the expansion
/// (what `decompress` and reports do), against a plain copy of the same floats, the memory bound.
struct RPSBenchmark {
    let n = 4096

    func run() throws {
        var rng = SeededGenerator(seed: 2)
        let w = rng.gaussianFloats(count: n * n, standardDeviation: 0.02)
        let checkpoint = try Checkpoint(entries: [TensorEntry(name: "w.weight", tensor: try DenseTensor(floats: w, shape: Shape([n, n])))])
        let step = try PassRegistry.builtIn.bind(try RecipeParser.parse(text: "share.rps ratio=2\n", file: "bench"), manifest: CheckpointManifest(checkpoint))[0]
        var context = PassContext(threadCount: 2)
        print("share.rps benchmark: ratio 2 over [\(n), \(n)] F32 weights, median of 3")
        let copy = medianSeconds(repetitions: 3) { blackHole(w.map { $0 + 0 }) }
        let plan = try medianSeconds(repetitions: 3) { try step.pass.plan(checkpoint, selected: [0], consumers: [:], context: &context) }
        guard case .shared(let view)? = context.plan["w.weight"] else { return }
        let expand = medianSeconds(repetitions: 3) { blackHole(view.expanded(threadCount: 2)) }
        let count = Double(n * n)
        print("  copy of the floats: \(fixed(copy, 3)) s; projection: \(fixed(plan, 3)) s (\(fixed(count / plan / 1e6, 0)) M weights/s); expansion: \(fixed(expand, 3)) s (\(fixed(count / expand / 1e6, 0)) M weights/s)")
    }
}
