import TensorCore
import CheckpointFormats

/// Seeded damage to the stored parts of a checkpoint, for the hostile-input runs that must only ever
/// read a file or reject it.
public enum SeededPartMutations {
    /// Replaces one random byte of the dense tensor `name` (dtype and shape kept); nothing for an empty one.
    public static func changeByte(of name: String, in entries: inout [TensorEntry], rng: inout SeededGenerator) throws {
        guard let i = entries.firstIndex(where: { $0.name == name }), case .dense(let t) = entries[i].payload, t.byteCount > 0 else { return }
        var bytes = t.storage.array
        bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
        entries[i] = TensorEntry(name: name, tensor: try DenseTensor(dtype: t.dtype, shape: t.shape, storage: ByteStorage(bytes)))
    }

    /// Replaces the tensor `name` by random bytes of one of `dtypes`, shaped `[0..<6]` or `[0..<6, 0..<12]`.
    public static func replace(_ name: String, in entries: inout [TensorEntry], dtypes: [DType], rng: inout SeededGenerator) throws {
        guard let i = entries.firstIndex(where: { $0.name == name }) else { return }
        let dtype = dtypes[Int(rng.next() % UInt64(dtypes.count))]
        let shape = Shape(Array([Int(rng.next() % 6), Int(rng.next() % 12)].prefix(1 + Int(rng.next() % 2))))
        let bytes = (0..<dtype.byteCount(elementCount: shape.elementCount)!).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        entries[i] = TensorEntry(name: name, tensor: try DenseTensor(dtype: dtype, shape: shape, storage: ByteStorage(bytes)))
    }
}

/// A test precondition that did not hold, with what was expected.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
