import TensorCore

/// One pass over a dense tensor: how many elements are non-zero
/// (`SparseElements`) and whether every group of `group.size` consecutive elements of a row holds at
/// most `group.kept` of them, which decides between `sparse-n-of-m` and `sparse-bitmask`.
struct SparseScan {
    let nonZeroCount: Int
    /// True when a group was given and no group holds more than `group.kept` non-zeros.
    let followsGroups: Bool

    /// Scans `tensor` (whole-byte dtype); `group.size` must divide the row length and be at most 64,
    /// so the groups of every row are the consecutive runs of the flattened tensor.
    init(_ tensor: DenseTensor, group: (kept: Int, size: Int)?) {
        let size = tensor.dtype.bitsPerElement / 8, n = tensor.elementCount
        var count = 0, follows = group != nil
        tensor.storage.withUnsafeBytes { bytes in
            if let group {
                var start = 0
                while start < n {
                    let c = SparseElements.nonZeroBits(bytes, start: start, count: group.size, size: size).nonzeroBitCount
                    count += c
                    if c > group.kept { follows = false }
                    start += group.size
                }
            } else {
                for i in 0..<n where SparseElements.isNonZero(bytes, i, size: size) { count += 1 }
            }
        }
        nonZeroCount = count
        followsGroups = follows
    }
}
