import TensorCore

/// How pruned dense tensors (`TensorEntry.sparsity != nil`) are stored compactly in safetensors.
///
/// A tensor of shape `[d₀, …, d_{k−1}]` (rank k ≥ 1) is viewed as `rows = d₀·…·d_{k−2}` rows (1 for a
/// vector) of `columns = d_{k−1}` elements. An element is *non-zero* when its bytes are not all zero
/// (so `-0.0` and NaN are kept and every value comes back bit for bit). For a tensor `<module>.weight`
/// the parts are named `<module>.<part>`, as compressed-tensors names them (it drops `.weight`; other
/// names are kept whole: `<name>.<part>`), and are written at the tensor's position in this order:
///
/// - `sparse-bitmask` (compressed-tensors' format, any pattern):
///   - `.shape` I64 `[k]`: the dense shape;
///   - `.compressed` `[nnz]` in the tensor's own dtype: the non-zero values in row-major order;
///   - `.bitmask` U8 `[rows, ⌈columns/8⌉]`: bit `c mod 8` of byte `⌊c/8⌋` of row r is 1 when element
///     (r, c) is non-zero (`numpy.packbits(mask, axis=-1, bitorder="little")`); padding bits are 0;
///   - `.row_offsets` I64 `[rows]`: the index in `.compressed` where each row's values start.
/// - `sparse-n-of-m` (pattern `N:M`; ModelPress's own format):
///   - `.shape` I64 `[k]`;
///   - `.compressed` `[rows, columns·N/M]` in the tensor's dtype: per group of M columns, the values at
///     its N kept positions in ascending position order;
///   - `.indices` U8 `[rows, ⌈columns·N/M·b/8⌉]` with `b = ⌈log₂ M⌉`: kept position j of a row (its
///     position inside its group) is the b-bit field at bits `b·j ..< b·(j+1)` of the row's bit stream,
///     bit i of the stream being bit `i mod 8` of byte `⌊i/8⌋`; padding bits are 0.
///   The kept positions of a group are its non-zero positions plus, when it has fewer than N, its
///   lowest zero positions (holding 0), so the choice is deterministic.
///
/// `__metadata__["modelpress.sparsity"]` is a compact JSON object mapping each compactly stored tensor
/// to `{"format": "sparse-bitmask" | "sparse-n-of-m", "pattern": "unstructured" | "N:M"}`.
///
/// The writer stores a tensor compactly only when its parts' data take fewer bytes than the dense
/// tensor (`storage(for:pattern:)`); an `N:M` tensor with more than N non-zeros in some group is stored
/// as a bitmask instead. Scalars and sub-byte dtypes stay dense. GGUF files are always written dense.
public enum SparseLayout {
    /// The `__metadata__` key of the record.
    public static let metadataKey = "modelpress.sparsity"
    /// The record's `format` of the bitmask form (compressed-tensors' name).
    public static let bitmaskFormat = "sparse-bitmask"
    /// The record's `format` of the N:M form.
    public static let nOfMFormat = "sparse-n-of-m"

    /// How one tensor is stored.
    public enum Storage: Sendable, Equatable {
        /// As an ordinary dense tensor.
        case dense
        /// `sparse-bitmask`, holding `nonZeroCount` values.
        case bitmask(nonZeroCount: Int)
        /// `sparse-n-of-m`: `kept` of every `group` consecutive elements of a row.
        case nOfM(kept: Int, group: Int)

        /// The record's `format` value (nil for dense storage).
        public var formatName: String? {
            switch self {
            case .dense: nil
            case .bitmask: SparseLayout.bitmaskFormat
            case .nOfM: SparseLayout.nOfMFormat
            }
        }
    }

    /// A stored part: its name suffix (after the module prefix), dtype and shape.
    public struct Part: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable {
            case shape, compressed, bitmask, rowOffsets = "row_offsets", indices
        }
        public let kind: Kind
        public let dtype: DType
        public let shape: Shape
        /// Data bytes of the part.
        public let byteCount: Int
    }

    /// The part names' prefix: `a.b.weight` gives `a.b`; other names are kept whole.
    public static func prefix(of name: String) -> String {
        CompressedTensorsLayout.module(of: name)
    }

    /// `<prefix>.<part>`.
    public static func partName(_ name: String, _ kind: Part.Kind) -> String {
        prefix(of: name) + "." + kind.rawValue
    }

    /// The rows and columns a shape is viewed as: rows = product of all but the last dimension (1 for a
    /// vector), columns = the last dimension. Nil for scalars and when the row count overflows `Int`
    /// (possible only with a zero-length last dimension).
    static func rowsAndColumns(_ shape: Shape) -> (rows: Int, columns: Int)? {
        guard let columns = shape.dimensions.last else { return nil }
        var rows = 1
        for d in shape.dimensions.dropLast() {
            let (p, overflow) = rows.multipliedReportingOverflow(by: d)
            guard !overflow else { return nil }
            rows = p
        }
        return (rows, columns)
    }

    /// `b = ⌈log₂ M⌉`, the bits of one kept position of a group of `group` (≥ 2) elements.
    static func indexBits(group: Int) -> Int {
        Int.bitWidth - (group - 1).leadingZeroBitCount
    }

    /// The parts `storage` writes for a dense tensor of `shape` and `dtype`, in the order written;
    /// nil for dense storage, scalars, sub-byte dtypes, a malformed `N:M` (`1 ≤ N < M ≤ 64`, M dividing
    /// the row length) or when a size overflows `Int`. This is the single size computation behind the
    /// writer, the reader's shape checks and `TensorEntry.byteCount(in:)`.
    public static func parts(_ storage: Storage, shape: Shape, dtype: DType) -> [Part]? {
        guard dtype.bitsPerElement % 8 == 0, let (rows, columns) = rowsAndColumns(shape) else { return nil }
        func part(_ kind: Part.Kind, _ dtype: DType, _ dims: [Int]) -> Part? {
            guard let shape = try? Shape(validating: dims), let bytes = dtype.byteCount(elementCount: shape.elementCount) else { return nil }
            return Part(kind: kind, dtype: dtype, shape: shape, byteCount: bytes)
        }
        let planned: [Part?]
        switch storage {
        case .dense:
            return nil
        case .bitmask(let count):
            guard count >= 0, count <= shape.elementCount else { return nil }
            planned = [part(.shape, .i64, [shape.rank]), part(.compressed, dtype, [count]),
                       part(.bitmask, .u8, [rows, columns / 8 + (columns % 8 == 0 ? 0 : 1)]), part(.rowOffsets, .i64, [rows])]
        case .nOfM(let n, let m):
            guard n >= 1, n < m, m <= 64, columns % m == 0 else { return nil }
            let kept = columns / m * n
            let (bits, overflow) = kept.multipliedReportingOverflow(by: indexBits(group: m))
            guard !overflow else { return nil }
            planned = [part(.shape, .i64, [shape.rank]), part(.compressed, dtype, [rows, kept]),
                       part(.indices, .u8, [rows, bits / 8 + (bits % 8 == 0 ? 0 : 1)])]
        }
        let parts = planned.compactMap { $0 }
        guard parts.count == planned.count else { return nil }
        var total = 0
        for p in parts {
            let (sum, overflow) = total.addingReportingOverflow(p.byteCount)
            guard !overflow else { return nil }
            total = sum
        }
        return parts
    }

    /// Data bytes of the parts `storage` writes (headers excluded); nil as for `parts`.
    public static func storedByteCount(_ storage: Storage, shape: Shape, dtype: DType) -> Int? {
        parts(storage, shape: shape, dtype: dtype)?.reduce(0) { $0 + $1.byteCount }
    }

    /// How the safetensors writer stores `tensor` marked with `pattern`: `sparse-n-of-m` when the
    /// pattern is `N:M` and every group of M has at most N non-zeros, else `sparse-bitmask`, in either
    /// case only when its parts take fewer bytes than the dense tensor; otherwise `.dense`.
    public static func storage(for tensor: DenseTensor, pattern: SparsityPattern) -> Storage {
        guard let (_, columns) = rowsAndColumns(tensor.shape), tensor.dtype.bitsPerElement % 8 == 0 else { return .dense }
        var group: (kept: Int, size: Int)?
        if case .nOfM(let n, let m) = pattern, n >= 1, n < m, m <= 64, columns % m == 0 { group = (n, m) }
        let scan = SparseScan(tensor, group: group)
        let candidate: Storage = if let group, scan.followsGroups { .nOfM(kept: group.kept, group: group.size) } else { .bitmask(nonZeroCount: scan.nonZeroCount) }
        guard let bytes = storedByteCount(candidate, shape: tensor.shape, dtype: tensor.dtype), bytes < tensor.byteCount else { return .dense }
        return candidate
    }

    /// Bytes `tensor` marked with `pattern` takes in a safetensors file (`storage(for:pattern:)`).
    public static func storedByteCount(_ tensor: DenseTensor, pattern: SparsityPattern) -> Int {
        storedByteCount(storage(for: tensor, pattern: pattern), shape: tensor.shape, dtype: tensor.dtype) ?? tensor.byteCount
    }
}
