/// The zero pattern a pruning pass left in a dense tensor (`TensorEntry.sparsity`), which tells the
/// safetensors writer it may store the tensor compactly (see `SparseLayout`).
///
/// Invariant: the pattern describes positions only. Pruned weights are exact zeros in the dense
/// values (DESIGN.md, "Checkpoint model"); kept weights may be zero too.
/// - `unstructured`: any positions.
/// - `nOfM(kept: N, group: M)`: in every run of `M` consecutive elements along the input dimension
///   (the last one) of each row, at most `N` are non-zero (`2:4` keeps 2 of every 4). `M` divides
///   the row length.
public enum SparsityPattern: Sendable, Equatable, Hashable, CustomStringConvertible {
    case unstructured
    case nOfM(kept: Int, group: Int)

    /// `unstructured`, or `N:M` (kept:group).
    public var description: String {
        switch self {
        case .unstructured: "unstructured"
        case .nOfM(let n, let m): "\(n):\(m)"
        }
    }

    /// Reads `unstructured` or `N:M` with `1 ≤ N < M ≤ 64`; nil otherwise.
    public init?(_ text: String) {
        if text == "unstructured" { self = .unstructured; return }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let n = Int(parts[0]), let m = Int(parts[1]), n >= 1, n < m, m <= 64 else { return nil }
        self = .nOfM(kept: n, group: m)
    }
}
