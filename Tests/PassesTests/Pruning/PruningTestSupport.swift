import Foundation
import Testing
import TensorCore
import CheckpointFormats
import Recipes
@testable import Passes

/// Shared helpers for the pruning tests: a pass from recipe text, dense entries, a float64 inverse.
enum PruningTestSupport {
    /// The pass of a one-step recipe, bound against a manifest holding `shape`.
    static func pass(_ text: String, shape: Shape = Shape([8, 8])) throws -> any CompressionPass {
        let recipe = try RecipeParser.parse(text: text, file: "r")
        let manifest = CheckpointManifest(entries: [CheckpointManifest.Entry(name: "w.weight", shape: shape, dtype: .f32)])
        return try PassRegistry.builtIn.bind(recipe, manifest: manifest)[0].pass
    }

    static func entry(_ values: [Float], _ dims: [Int], name: String = "w.weight", dtype: DType = .f32) throws -> TensorEntry {
        TensorEntry(name: name, tensor: try DenseTensor(floats: values, shape: Shape(dims), dtype: dtype))
    }

    static func values(_ entry: TensorEntry) throws -> [Float] {
        guard case .dense(let t) = entry.payload else { Issue.record("not dense"); return [] }
        return try t.floats()
    }

    /// The inverse of a symmetric positive definite matrix (row-major, float64), by Gauss–Jordan.
    static func inverse(_ a: [Double], n: Int) -> [Double] {
        var m = a, inv = [Double](repeating: 0, count: n * n)
        for i in 0..<n { inv[i * n + i] = 1 }
        for c in 0..<n {
            let p = m[c * n + c]
            for k in 0..<n { m[c * n + k] /= p; inv[c * n + k] /= p }
            for r in 0..<n where r != c {
                let f = m[r * n + c]
                if f == 0 { continue }
                for k in 0..<n { m[r * n + k] -= f * m[c * n + k]; inv[r * n + k] -= f * inv[c * n + k] }
            }
        }
        return inv
    }

    /// `‖W − W'‖²/‖W‖²`.
    static func weightError(_ w: [Float], _ p: [Float]) -> Double {
        var num = 0.0, den = 0.0
        for (a, b) in zip(w, p) { num += Double(a - b) * Double(a - b); den += Double(a) * Double(a) }
        return num / den
    }
}
