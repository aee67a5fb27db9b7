import TensorCore

/// Writes GGUF v3 files (little-endian), deterministically and atomically.
///
/// Layout as llama.cpp writes it: header, metadata in the given order, tensor infos in the given
/// order with n_dims = the tensor's rank (at least 1), zero padding to the alignment (32, or
/// `general.alignment` when the metadata sets it), then each tensor's data followed by zero padding
/// to the alignment, including the last. Tensors are produced one at a time.
public enum GGUFWriter {
    /// Name, ggml type id and numpy-order shape of a tensor to write, with its byte count.
    public struct PlannedTensor: Sendable, Equatable {
        public let name: String
        public let typeID: UInt32
        public let shape: Shape
        public let byteCount: Int
        public init(name: String, typeID: UInt32, shape: Shape, byteCount: Int) {
            self.name = name
            self.typeID = typeID
            self.shape = shape
            self.byteCount = byteCount
        }
    }

    /// The header bytes (everything before the data section, padding included).
    public static func encodeHeader(metadata: [(key: String, value: GGUFValue)], tensors: [PlannedTensor]) throws(GGUFWriteError) -> (bytes: [UInt8], alignment: Int) {
        var alignment = GGUFHeader.defaultAlignment
        if let value = metadata.first(where: { $0.key == "general.alignment" })?.value {
            guard case .uint32(let a) = value, a != 0, a & (a - 1) == 0 else { throw .badAlignment }
            alignment = Int(a)
        }
        var out: [UInt8] = GGUFHeader.magic
        append(UInt32(3), to: &out)
        append(UInt64(tensors.count), to: &out)
        append(UInt64(metadata.count), to: &out)
        var keys = Set<[UInt8]>()
        for (key, value) in metadata {
            guard !key.isEmpty, keys.insert(Array(key.utf8)).inserted else { throw .invalidKey(key) }
            appendString(key, to: &out)
            append(value.type.rawValue, to: &out)
            try appendValue(value, key: key, to: &out)
        }
        var offset = 0
        var names = Set<[UInt8]>()
        for t in tensors {
            guard t.name.utf8.count < 64, names.insert(Array(t.name.utf8)).inserted else { throw .invalidTensorName(t.name) }
            guard t.shape.rank <= 4 else { throw .tooManyDimensions(t.name) }
            appendString(t.name, to: &out)
            let ne = t.shape.dimensions.reversed().map { Int64($0) }
            append(UInt32(max(ne.count, 1)), to: &out)
            if ne.isEmpty { append(Int64(1), to: &out) }
            for d in ne { append(d, to: &out) }
            append(t.typeID, to: &out)
            append(UInt64(offset), to: &out)
            offset = GGUFHeader.alignUp(offset + t.byteCount, alignment)
        }
        out.append(contentsOf: repeatElement(0, count: GGUFHeader.alignUp(out.count, alignment) - out.count))
        return (out, alignment)
    }

    /// Writes the file; `produce` returns the bytes of the tensor at each position, in order
    /// (exactly `byteCount` of them). Mapped bytes give back their resident pages once written.
    public static func write(to path: String, metadata: [(key: String, value: GGUFValue)], tensors: [PlannedTensor],
                             produce: (Int) throws -> ByteStorage) throws {
        let (header, alignment) = try encodeHeader(metadata: metadata, tensors: tensors)
        let output = try AtomicFileWriter(destination: path)
        try output.write(header)
        for (position, planned) in tensors.enumerated() {
            let storage = try produce(position)
            guard storage.count == planned.byteCount else { throw GGUFWriteError.producedMismatch(tensor: planned.name) }
            try storage.withUnsafeBytes { try output.write($0) }
            storage.releaseResidentPages()
            try output.writeZeros(GGUFHeader.alignUp(storage.count, alignment) - storage.count)
        }
        try output.commit()
    }

    /// Writes a checkpoint whose tensors are dense in a GGUF-storable dtype, already in a ggml layout,
    /// or quantized (stored as `GGUFQuantizedLayout` describes).
    public static func write(_ checkpoint: Checkpoint, to path: String) throws {
        let writer = StreamingCheckpointWriter(format: .gguf, names: checkpoint.entries.map(\.name),
                                               metadata: checkpoint.metadata, destination: path)
        for (position, entry) in checkpoint.entries.enumerated() { try writer.add(entry, at: position) }
        try writer.write(to: path)
    }

    private static func append<T: FixedWidthInteger>(_ v: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    private static func appendString(_ s: String, to out: inout [UInt8]) {
        append(UInt64(s.utf8.count), to: &out)
        out.append(contentsOf: s.utf8)
    }

    private static func appendValue(_ value: GGUFValue, key: String, to out: inout [UInt8]) throws(GGUFWriteError) {
        switch value {
        case .uint8(let v): append(v, to: &out)
        case .int8(let v): append(v, to: &out)
        case .uint16(let v): append(v, to: &out)
        case .int16(let v): append(v, to: &out)
        case .uint32(let v): append(v, to: &out)
        case .int32(let v): append(v, to: &out)
        case .float32(let v): append(v.bitPattern, to: &out)
        case .bool(let v): out.append(v ? 1 : 0)
        case .string(let s): appendString(s, to: &out)
        case .uint64(let v): append(v, to: &out)
        case .int64(let v): append(v, to: &out)
        case .float64(let v): append(v.bitPattern, to: &out)
        case .array(let elementType, let values):
            guard elementType != .array, values.allSatisfy({ $0.type == elementType }) else { throw .invalidArray(key) }
            append(elementType.rawValue, to: &out)
            append(UInt64(values.count), to: &out)
            for v in values { try appendValue(v, key: key, to: &out) }
        }
    }
}

/// Problems found while writing GGUF.
public enum GGUFWriteError: Error, Equatable, Sendable, CustomStringConvertible {
    case badAlignment
    case invalidKey(String)
    case invalidArray(String)
    case invalidTensorName(String)
    case tooManyDimensions(String)
    case unsupportedDType(tensor: String, dtype: DType)
    case producedMismatch(tensor: String)

    public var description: String {
        switch self {
        case .badAlignment: "general.alignment must be a UINT32 power of two"
        case .invalidKey(let k): "metadata key '\(k)' is empty or repeated"
        case .invalidArray(let k): "metadata '\(k)': arrays must be homogeneous and not nested"
        case .invalidTensorName(let n): "tensor name '\(n)' is repeated or longer than 63 bytes (GGUF limit)"
        case .tooManyDimensions(let n): "tensor '\(n)' has more than 4 dimensions (GGUF limit)"
        case .unsupportedDType(let n, let d): "tensor '\(n)' has dtype \(d), which GGUF cannot store (cast it to F32, F16 or BF16)"
        case .producedMismatch(let n): "internal error: tensor '\(n)' changed size while writing"
        }
    }
}
