@testable import CheckpointFormats

/// SplitMix64, for reproducible test data.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    mutating func uniform() -> Float { Float(next() >> 40) * 0x1p-24 }
    mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * uniform() }
    /// Approximately standard normal (sum of 12 uniforms − 6; plenty for test data).
    mutating func gaussian() -> Float {
        var s: Float = 0
        for _ in 0..<12 { s += uniform() }
        return s - 6
    }
    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// Named families of awkward rows for differential and property tests.
enum RowKind: String, CaseIterable, Sendable {
    case gaussian, heavyTailed, uniform, allPositive, allNegative, outliers, zeroRuns, constantRuns
    case twoValued, tiny, subnormal, huge, ties, signedZeros, quantizedGrid, mixedScales, zeroBlocks, equalOpposite

    func make(_ n: Int, _ rng: inout SplitMix64) -> [Float] {
        var x = [Float](repeating: 0, count: n)
        switch self {
        case .gaussian: for i in 0..<n { x[i] = 0.02 * rng.gaussian() }
        case .heavyTailed:
            for i in 0..<n { let g = rng.gaussian(); x[i] = 0.01 * g / Swift.max(0.05, rng.uniform()) }
        case .uniform: for i in 0..<n { x[i] = rng.uniform(-1, 1) }
        case .allPositive: for i in 0..<n { x[i] = rng.uniform(0.001, 0.1) }
        case .allNegative: for i in 0..<n { x[i] = -rng.uniform(0.001, 0.1) }
        case .outliers:
            for i in 0..<n { x[i] = 0.02 * rng.gaussian() }
            for _ in 0..<Swift.max(1, n / 64) { x[rng.int(n)] = rng.uniform(-60, 60) }
        case .zeroRuns:
            for i in 0..<n { x[i] = (i / 16) % 3 == 0 ? 0 : 0.02 * rng.gaussian() }
        case .constantRuns:
            for i in 0..<n { x[i] = Float((i / 16) % 5) * 0.25 - 0.5 }
        case .twoValued: for i in 0..<n { x[i] = rng.uniform() < 0.5 ? -0.75 : 0.5 }
        case .tiny: for i in 0..<n { x[i] = 1e-8 * rng.gaussian() }
        case .subnormal: for i in 0..<n { x[i] = Float(1e-39 as Double) * rng.gaussian() }
        case .huge: for i in 0..<n { x[i] = 1e30 * rng.gaussian() }
        case .ties:
            // Multiples of 1/16 of a per-block step: exercises round-half cases and equal magnitudes.
            for i in 0..<n { x[i] = Float(rng.int(33) - 16) / 16 }
        case .signedZeros: for i in 0..<n { x[i] = rng.uniform() < 0.5 ? -0.0 : (rng.uniform() < 0.3 ? 0.0 : 0.01) }
        case .quantizedGrid:
            for i in 0..<n { x[i] = 0.003 * Float(rng.int(16) - 8) }
        case .zeroBlocks:
            // Whole 32- and 256-blocks of ±0, next to ordinary data.
            for i in 0..<n {
                let zero = (i / 32) % 3 == 0 || (i / 256) % 2 == 1
                x[i] = zero ? ((i / 32) % 2 == 0 ? 0.0 : -0.0) : 0.02 * rng.gaussian()
            }
        case .equalOpposite:
            // +a and -a as the block's extremes, in either order.
            for i in 0..<n { x[i] = 0.01 * rng.gaussian() }
            for b in stride(from: 0, to: n, by: 16) {
                let a = rng.uniform(0.5, 1)
                let (p, q) = (b + rng.int(16), b + rng.int(16))
                x[p] = rng.uniform() < 0.5 ? a : -a
                x[q] = -x[p]
            }
        case .mixedScales:
            for i in 0..<n { x[i] = rng.gaussian() * Float(1 << ((i / 32) % 12)) * 1e-4 }
        }
        return x
    }
}

/// Importance vectors: random positive, with zeros, and with a wide dynamic range.
func makeImportance(_ n: Int, _ variant: Int, _ rng: inout SplitMix64) -> [Float] {
    (0..<n).map { _ in
        switch variant % 3 {
        case 0: rng.uniform(0.01, 5)
        case 1: rng.uniform() < 0.2 ? 0 : rng.uniform(0, 2)
        default: Float(1 << rng.int(20)) * rng.uniform(0.5, 1) * 1e-3
        }
    }
}
