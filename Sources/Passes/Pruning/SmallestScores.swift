import TensorCore

/// Picks exactly `count` of the smallest scores (non-negative, finite), the ties at the threshold
/// going to the lowest positions: the `count` first elements in the order (score, position). One
/// definition for every pruning pass, so the same input always gives the same mask.
///
/// Scores are compared by the bit patterns of their absolute values (for non-negative floats the
/// integer order is the numeric order, and −0 counts as 0). Long inputs use a two-level radix select
/// (`ScoreThreshold`, two passes, O(n)); short ones sort.
enum SmallestScores {
    /// Sets `mask[i] = true` for the chosen elements; `mask` must come in all false.
    static func mark(_ scores: UnsafeBufferPointer<Float>, count: Int, into mask: UnsafeMutableBufferPointer<Bool>) {
        let n = scores.count
        precondition(count >= 0 && count <= n && mask.count == n, "SmallestScores: bad count")
        if count == 0 { return }
        if count == n { for i in 0..<n { mask[i] = true }; return }
        if n <= 16 {
            // Tiny groups (N:M): repeated minimum scans, no allocation; the first minimum wins ties.
            for _ in 0..<count {
                var best = -1, bestKey = UInt32.max
                for i in 0..<n where !mask[i] {
                    let k = key(scores[i])
                    if best < 0 || k < bestKey { best = i; bestKey = k }
                }
                mask[best] = true
            }
            return
        }
        if n <= 2048 {
            let order = (0..<n).sorted { a, b in
                let x = key(scores[a]), y = key(scores[b])
                return x < y || (x == y && a < b)
            }
            for i in order.prefix(count) { mask[i] = true }
            return
        }
        var search = ScoreThreshold(count: count)
        search.addCoarse(scores)
        search.resolveCoarse()
        search.addFine(scores)
        let cut = search.resolveFine()
        var ties = cut.ties
        for i in 0..<n {
            let k = key(scores[i])
            if k < cut.key { mask[i] = true } else if k == cut.key && ties > 0 { mask[i] = true; ties -= 1 }
        }
    }

    /// The comparison key of a score: the bit pattern of its absolute value.
    @inline(__always) static func key(_ score: Float) -> UInt32 { abs(score).bitPattern }
}

/// The `count`-th smallest key over scores fed in one or more chunks (for a threshold over several
/// tensors), found by a radix select on the high and then the low 16 bits of the key: after
/// `addCoarse` over all chunks and `resolveCoarse`, `addFine` over the same chunks in the same
/// order, then `resolveFine` gives the threshold key `t` and how many elements equal to `t` are
/// taken (`ties`): the chosen elements are all keys below `t` plus the first `ties` keys equal to it.
struct ScoreThreshold: Sendable {
    let count: Int
    private var coarse = [Int](repeating: 0, count: 1 << 16)
    private var fine = [Int](repeating: 0, count: 1 << 16)
    private var bucket: UInt32 = 0
    private var belowBucket = 0

    init(count: Int) { self.count = count }

    mutating func addCoarse(_ scores: UnsafeBufferPointer<Float>) {
        for s in scores { coarse[Int(SmallestScores.key(s) >> 16)] += 1 }
    }

    mutating func resolveCoarse() {
        var below = 0
        for b in 0..<(1 << 16) {
            if below + coarse[b] >= count && coarse[b] > 0 { bucket = UInt32(b); belowBucket = below; return }
            below += coarse[b]
        }
        bucket = UInt32((1 << 16) - 1)
        belowBucket = below
    }

    mutating func addFine(_ scores: UnsafeBufferPointer<Float>) {
        for s in scores {
            let k = SmallestScores.key(s)
            if k >> 16 == bucket { fine[Int(k & 0xFFFF)] += 1 }
        }
    }

    /// The threshold key and the number of elements equal to it that are taken.
    func resolveFine() -> (key: UInt32, ties: Int) {
        var below = belowBucket
        for low in 0..<(1 << 16) where fine[low] > 0 {
            if below + fine[low] >= count { return (bucket << 16 | UInt32(low), count - below) }
            below += fine[low]
        }
        return (bucket << 16 | 0xFFFF, 0)
    }
}
