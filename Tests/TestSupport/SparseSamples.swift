import TensorCore
import CheckpointFormats

/// Pruned dense tensors (exact zeros at seeded positions) for the tests of the compact sparse layouts.
public enum SparseSamples {
    /// Seeded Gaussian values of `dims` in `dtype` (F32, F16 or BF16, never zero) with exactly
    /// `zeroCount` of them set to zero, at seeded positions.
    public static func unstructured(_ dims: [Int], dtype: DType, zeroCount: Int, seed: UInt64) throws -> DenseTensor {
        var rng = SeededGenerator(seed: seed)
        let shape = Shape(dims)
        var values = (0..<shape.elementCount).map { _ in nonZero(&rng) }
        var order = Array(values.indices)
        order.shuffle(using: &rng)
        for i in order.prefix(zeroCount) { values[i] = 0 }
        return try DenseTensor(floats: values, shape: shape, dtype: dtype)
    }

    /// Seeded values of `dims` in `dtype` where every group of `group` consecutive elements of a row keeps
    /// its `kept` largest magnitudes; with `underfilled`, every third group keeps one fewer (so the
    /// writer fills a kept slot with a zero position).
    public static func nOfM(_ dims: [Int], dtype: DType, kept: Int, group: Int, seed: UInt64, underfilled: Bool = false) throws -> DenseTensor {
        var rng = SeededGenerator(seed: seed)
        let shape = Shape(dims)
        var values = (0..<shape.elementCount).map { _ in nonZero(&rng) }
        for (g, start) in stride(from: 0, to: values.count, by: group).enumerated() {
            let keep = underfilled && g % 3 == 2 ? kept - 1 : kept
            let ranked = (start..<(start + group)).sorted { abs(values[$0]) > abs(values[$1]) }
            for i in ranked.dropFirst(keep) { values[i] = 0 }
        }
        return try DenseTensor(floats: values, shape: shape, dtype: dtype)
    }

    /// The number of elements of `t` whose bytes are not all zero.
    public static func nonZeroCount(_ t: DenseTensor) -> Int {
        let size = t.dtype.bitsPerElement / 8
        return t.storage.withUnsafeBytes { bytes in
            (0..<t.elementCount).filter { i in (0..<size).contains { bytes[i * size + $0] != 0 } }.count
        }
    }

    /// A value of magnitude in [0.25, 4) that stays non-zero in F16 and BF16.
    static func nonZero(_ rng: inout SeededGenerator) -> Float {
        let magnitude = Float(0.25 + 3.75 * rng.nextUnitDouble())
        return rng.next() % 2 == 0 ? magnitude : -magnitude
    }
}
