/// The recomputable map of randomized parameter sharing, `rps-randomfold-splitmix64-v1`
/// (algorithms.md §5.5): weight `i` (its global index: the tensor's offset plus its row-major
/// index) reads `ŵ_i = λ_t · sign(i) · z[slot(i)]` from a shared array `z` of `m` slots.
///
/// ```
/// mix64(x)      = SplitMix64's finalizer
/// H(seed, k, x) = mix64(x + seed·0x9E3779B97F4A7C15 + k)                (all arithmetic mod 2⁶⁴)
/// range(h, m)   = high 64 bits of h·m                                   (Lemire, no modulo bias)
/// slot(i)       = (i mod C + range(H(seed, 1, i div C), m)) mod m        C = chunk (default m)
/// sign(i)       = top bit of H(seed, 2, i) set ? −1 : +1
/// ```
/// With `C = m` this is RANDOMFOLD: every run of `m` consecutive indices is a rotation of the
/// slots, so at `m = n` the map is a permutation (the weights come back exactly) and every slot
/// holds ⌊n/m⌋ or ⌈n/m⌉ weights. A shorter chunk (ROAST-style tiles) maps each run of `C` weights
/// to consecutive slots at its own random start; runs may then overlap, so `C < m` loses the exact
/// recovery at ratio 1. Test vectors are fixed in the tests, so the map never drifts.
public struct RandomFoldMap: Sendable, Equatable, Hashable {
    public static let specName = "rps-randomfold-splitmix64-v1"

    public let seed: UInt64
    /// `m`, the number of shared slots (≥ 1).
    public let slotCount: Int
    /// `C`, the length of the runs of consecutive weights mapped to consecutive slots (≥ 1).
    public let chunk: Int

    public init(seed: UInt64, slotCount: Int, chunk: Int? = nil) {
        precondition(slotCount >= 1 && (chunk ?? 1) >= 1, "RandomFoldMap: slot count and chunk must be positive")
        self.seed = seed
        self.slotCount = slotCount
        self.chunk = chunk ?? slotCount
    }

    @inline(__always) static func mix64(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always) func hash(_ k: UInt64, _ x: UInt64) -> UInt64 {
        Self.mix64(x &+ seed &* 0x9E37_79B9_7F4A_7C15 &+ k)
    }

    /// The slot weight `i` (a global index ≥ 0) reads.
    @inline(__always) public func slot(_ i: Int) -> Int {
        let c = UInt64(chunk), x = UInt64(i), m = UInt64(slotCount)
        let start = hash(1, x / c).multipliedFullWidth(by: m).high
        return Int((x % c + start) % m)
    }

    /// `−1` or `+1`: the sign weight `i` reads its slot with.
    @inline(__always) public func sign(_ i: Int) -> Float {
        hash(2, UInt64(i)) >> 63 == 1 ? -1 : 1
    }
}
