import TensorCore
import CheckpointFormats

/// One adapter module's update of its base weight, in the base tensor's own layout, float64
/// (algorithms.md §6.3–6.4, PEFT's `get_delta_weight` and DoRA's `merge_safe`):
/// - Linear: `ΔW = s·(B·A)` `[out, in]`, transposed with `fan_in_fan_out` (GPT-2 `Conv1D` stores
///   `[in, out]`);
/// - Embedding: `ΔW = s·(B·A)ᵀ` `[rows, dim]` (A `[r, rows]`, B `[dim, r]`);
/// - DoRA: `V = W + ΔW` (in `[out, in]` orientation), `W'_o = (m_o / ‖V_o‖₂)·V_o` per output row.
/// `s` is the module's scaling times the adapter's merge weight.
enum LoRADelta {
    /// The shape `ΔW` has in the base tensor's layout.
    static func baseShape(of m: LoRAAdapter.Module, fanInFanOut: Bool) -> [Int] {
        let a = m.a!.shape.dimensions, b = m.b!.shape.dimensions
        if m.isEmbedding { return [a[1], b[0]] }
        return fanInFanOut ? [a[1], b[0]] : [b[0], a[1]]
    }

    /// `ΔW` (row-major, the base layout) scaled by `factor` (scaling × merge weight).
    static func delta(_ m: LoRAAdapter.Module, fanInFanOut: Bool, factor: Double, threadCount: Int) throws -> [Double] {
        let a = try m.a!.floats(), b = try m.b!.floats()
        let r = m.rank, out = m.b!.shape.dimensions[0], inner = m.a!.shape.dimensions[1]
        // P = B·A [out, inner]; the base layout is P (linear) or Pᵀ (embedding, fan_in_fan_out).
        let transposed = m.isEmbedding || fanInFanOut
        var delta = [Double](repeating: 0, count: out * inner)
        delta.withUnsafeMutableBufferPointer { d in
            ParallelLoop.forEachRange(count: out, threadCount: threadCount) { rows in
                for o in rows {
                    for j in 0..<inner {
                        var sum = 0.0
                        for k in 0..<r { sum += Double(b[o * r + k]) * Double(a[k * inner + j]) }
                        d[transposed ? j * out + o : o * inner + j] = factor * sum
                    }
                }
            }
        }
        return delta
    }

    /// DoRA: `W ← (m_o/‖V_o‖)·V_o` with `V = W + ΔW`, rows `o` of the `[out, in]` orientation
    /// (columns of the stored tensor with `fan_in_fan_out`). A zero row stays zero.
    static func applyDoRA(_ w: inout [Double], delta: [Double], magnitude: [Float], out: Int, inner: Int, transposed: Bool) {
        for i in w.indices { w[i] += delta[i] }
        for o in 0..<out {
            var norm = 0.0
            for j in 0..<inner { let v = w[transposed ? j * out + o : o * inner + j]; norm += v * v }
            norm = norm.squareRoot()
            guard norm > 0 else { continue }
            let factor = Double(magnitude[o]) / norm
            for j in 0..<inner { w[transposed ? j * out + o : o * inner + j] *= factor }
        }
    }

    /// llama.cpp's Q/K row order (convert_hf_to_gguf.py `permute`): rows `[heads, 2, half, …]` become
    /// `[heads, half, 2, …]`, i.e. HF row `h·2·half + t·half + i` goes to `h·2·half + 2i + t`.
    /// `rowLength` values per row; `values.count / rowLength` rows, a multiple of `2·heads`.
    static func permuteRows<T>(_ values: [T], rowLength: Int, heads: Int) -> [T] {
        let rows = values.count / rowLength, half = rows / heads / 2
        var out = values
        for h in 0..<heads {
            for t in 0..<2 {
                for i in 0..<half {
                    let from = (h * 2 * half + t * half + i) * rowLength, to = (h * 2 * half + 2 * i + t) * rowLength
                    for j in 0..<rowLength { out[to + j] = values[from + j] }
                }
            }
        }
        return out
    }
}
