import Foundation

/// A tensor stored as a view into a shared slot array (randomized parameter sharing, STABLE-RPS
/// style): element `j` (row-major) is `scale · map.sign(offset + j) · slots[map.slot(offset + j)]`.
///
/// Invariants: `slots.count == map.slotCount`; every tensor that shares the array has the same
/// `arrayName`, `map` and `slots`, and their `[offset, offset + elementCount)` ranges do not overlap.
/// The slot array is a copy-on-write Swift array, so tensors share its storage in memory.
public struct SharedTensor: Sendable, Equatable {
    public let shape: Shape
    /// The name the slot array is stored under (one per sharing step, e.g. `rps.0`).
    public let arrayName: String
    public let map: RandomFoldMap
    /// The global index of this tensor's first element.
    public let offset: Int
    /// `λ_t`, the tensor's scale.
    public let scale: Float
    /// `z`, the shared slots.
    public let slots: [Float]
    /// How many weights share the array in all (`n`; the ratio is `n / m`).
    public let sharedElementCount: Int

    public init(shape: Shape, arrayName: String, map: RandomFoldMap, offset: Int, scale: Float, slots: [Float], sharedElementCount: Int) {
        precondition(slots.count == map.slotCount && offset >= 0 && sharedElementCount >= offset + shape.elementCount, "SharedTensor: slots and map do not fit")
        self.shape = shape
        self.sharedElementCount = sharedElementCount
        self.arrayName = arrayName
        self.map = map
        self.offset = offset
        self.scale = scale
        self.slots = slots
    }

    /// The dense values, `scale · sign · z[slot]` for each element in row-major order, on
    /// `threadCount` workers (each element is computed alone, so the result does not depend on it).
    public func expanded(threadCount: Int = 1) -> [Float] {
        var out = [Float](repeating: 0, count: shape.elementCount)
        out.withUnsafeMutableBufferPointer { out in
            slots.withUnsafeBufferPointer { z in
                ParallelLoop.forEachRange(count: out.count, threadCount: threadCount) { range in
                    for j in range { out[j] = scale * map.sign(offset + j) * z[map.slot(offset + j)] }
                }
            }
        }
        return out
    }

    /// `n / m`, the compression ratio of the whole array.
    public var ratio: Double { Double(sharedElementCount) / Double(map.slotCount) }

    /// This tensor's share of the stored bytes: its fraction of the array's F32 slots, plus its scale.
    public var storedByteCount: Int { Int((Double(shape.elementCount) * 4 / ratio).rounded()) + 4 }

    /// A short label: `rps 2.00x`.
    public var encodingName: String { "rps " + String(format: "%.2fx", ratio) }
}
