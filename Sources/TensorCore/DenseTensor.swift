/// A dense row-major tensor: dtype, shape and exactly `dtype.byteCount(shape.elementCount)` bytes.
public struct DenseTensor: Sendable, Equatable {
    public let dtype: DType
    public let shape: Shape
    public let storage: ByteStorage

    /// Wraps bytes, checking that their count matches the dtype and shape.
    public init(dtype: DType, shape: Shape, storage: ByteStorage) throws(TensorError) {
        guard let expected = dtype.byteCount(elementCount: shape.elementCount) else {
            throw .byteCountUndefined(dtype: dtype, shape: shape.dimensions)
        }
        guard expected == storage.count else {
            throw .byteCountMismatch(dtype: dtype, shape: shape.dimensions, expected: expected, actual: storage.count)
        }
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
    }

    /// Encodes `values` as `dtype` (a float dtype), rounding to nearest even.
    public init(floats values: [Float], shape: Shape, dtype: DType = .f32) throws(TensorError) {
        guard dtype.isConvertibleFloat else { throw .notConvertibleToFloat(dtype) }
        guard values.count == shape.elementCount else {
            throw .elementCountMismatch(expected: shape.elementCount, actual: values.count)
        }
        let byteCount = dtype.byteCount(elementCount: values.count)!
        let storage = values.withUnsafeBufferPointer { source in
            ByteStorage(count: byteCount) { FloatCodec.encode(source, as: dtype, into: $0) }
        }
        try self.init(dtype: dtype, shape: shape, storage: storage)
    }

    public var elementCount: Int { shape.elementCount }
    public var byteCount: Int { storage.count }

    /// The values as `Float` (exact for every float dtype except F64, which rounds to nearest even).
    public func floats() throws(TensorError) -> [Float] {
        guard dtype.isConvertibleFloat else { throw .notConvertibleToFloat(dtype) }
        let n = elementCount
        return [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            storage.withUnsafeBytes { FloatCodec.decode($0, as: dtype, into: buffer) }
            initialized = n
        }
    }

    /// This tensor re-encoded as `target` (both float dtypes). Returns `self` when the dtype already matches.
    public func converted(to target: DType) throws(TensorError) -> DenseTensor {
        if target == dtype { return self }
        guard dtype.isConvertibleFloat else { throw .notConvertibleToFloat(dtype) }
        guard target.isConvertibleFloat else { throw .notConvertibleToFloat(target) }
        let n = elementCount
        let outCount = target.byteCount(elementCount: n)!
        let sourceType = dtype
        let out = storage.withUnsafeBytes { source in
            ByteStorage(count: outCount) { FloatCodec.convert(source, from: sourceType, to: target, count: n, into: $0) }
        }
        return try DenseTensor(dtype: target, shape: shape, storage: out)
    }
}
