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
        var delta = [Double](repeating: 0, count: m.b!.shape.dimensions[0] * m.a!.shape.dimensions[1])
        try add(m, into: &delta, fanInFanOut: fanInFanOut, factor: factor, threadCount: threadCount)
        return delta
    }

    /// `w += factor·ΔW` in place (the base layout), without a separate delta array.
    static func add(_ m: LoRAAdapter.Module, into w: inout [Double], fanInFanOut: Bool, factor: Double, threadCount: Int) throws {
        let a = try m.a!.floats().map(Double.init), b = try m.b!.floats()
        let r = m.rank, out = m.b!.shape.dimensions[0], inner = m.a!.shape.dimensions[1]
        // P = B·A [out, inner], row by row as Σ_k B[o,k]·A[k,:] (contiguous, vectorizable); the base
        // layout is P (linear) or Pᵀ (embedding, fan_in_fan_out).
        let transposed = m.isEmbedding || fanInFanOut
        precondition(w.count == out * inner, "LoRA: the delta does not fit the base")
        w.withUnsafeMutableBufferPointer { d in
            a.withUnsafeBufferPointer { a in
                ParallelLoop.forEachRange(count: out, threadCount: threadCount) { rows in
                    let row = UnsafeMutableBufferPointer<Double>.allocate(capacity: inner)
                    defer { row.deallocate() }
                    for o in rows {
                        for j in 0..<inner { row[j] = 0 }
                        for k in 0..<r {
                            let c = Double(b[o * r + k])
                            let base = k * inner
                            for j in 0..<inner { row[j] += c * a[base + j] }
                        }
                        if transposed {
                            for j in 0..<inner { d[j * out + o] += factor * row[j] }
                        } else {
                            for j in 0..<inner { d[o * inner + j] += factor * row[j] }
                        }
                    }
                }
            }
        }
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
