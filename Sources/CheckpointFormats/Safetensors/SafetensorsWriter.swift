import TensorCore

/// Writes safetensors files deterministically and atomically.
///
/// The header is compact JSON (`__metadata__` first, then tensors in data order, each with `dtype`,
/// `shape`, `data_offsets`), padded with spaces so that 8 + N is a multiple of 8. With
/// `.reference` ordering (dtype in descending declaration order, then name) and at most one metadata
/// key, the bytes equal those of the reference `safetensors` writer. Tensors are produced one at a
/// time, so only one tensor needs to be in memory.
public enum SafetensorsWriter {
    /// Tensor order in the output.
    public enum Ordering: Sendable {
        /// The order given (for ModelPress, the input checkpoint's order).
        case preserve
        /// The safetensors crate's order: dtype descending (U64, I64, F64, ..., BOOL), then name.
        case reference
    }

    /// Name, dtype and shape of a tensor to write.
    public struct PlannedTensor: Sendable, Equatable {
        public let name: String
        public let dtype: DType
        public let shape: Shape
        public init(name: String, dtype: DType, shape: Shape) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }
    }

    /// Header bytes (length prefix included) for tensors laid out in the given order.
    public static func encodeHeader(metadata: [(key: String, value: String)], tensors: [PlannedTensor]) throws(SafetensorsWriteError) -> [UInt8] {
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += "\"__metadata__\":{" + metadata.map { JSONWriter.quoted($0.key) + ":" + JSONWriter.quoted($0.value) }.joined(separator: ",") + "}"
            first = false
        }
        var offset = 0
        var seen = Set<[UInt8]>()
        for t in tensors {
            guard t.name != "__metadata__", seen.insert(Array(t.name.utf8)).inserted else { throw .invalidTensorName(t.name) }
            guard let n = t.dtype.byteCount(elementCount: t.shape.elementCount) else { throw .invalidShape(tensor: t.name) }
            if !first { json += "," }
            first = false
            let dims = t.shape.dimensions.map(String.init).joined(separator: ",")
            json += JSONWriter.quoted(t.name) + ":{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(dims)],\"data_offsets\":[\(offset),\(offset + n)]}"
            offset += n
        }
        json += "}"
        var header = Array(json.utf8)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))
        guard UInt64(header.count) <= SafetensorsHeader.maximumHeaderLength else { throw .headerTooLarge(header.count) }
        return withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header
    }

    /// The positions in `tensors`, in the order they will be written.
    public static func arrange(_ tensors: [PlannedTensor], _ ordering: Ordering) -> [Int] {
        switch ordering {
        case .preserve: Array(tensors.indices)
        case .reference:
            tensors.indices.sorted { i, j in
                let a = tensors[i], b = tensors[j]
                if a.dtype != b.dtype { return a.dtype.referenceRank > b.dtype.referenceRank }
                return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)   // byte order, as Rust compares strings
            }
        }
    }

    /// Writes `tensors` to `path`, calling `produce` with each tensor's position in `tensors`, once per
    /// tensor in output order, to get its bytes. The file appears only when complete. Mapped bytes
    /// give back their resident pages once written.
    public static func write(to path: String, metadata: [(key: String, value: String)], tensors: [PlannedTensor],
                             ordering: Ordering = .preserve, produce: (Int) throws -> DenseTensor) throws {
        let order = arrange(tensors, ordering)
        let header = try encodeHeader(metadata: metadata, tensors: order.map { tensors[$0] })
        let output = try AtomicFileWriter(destination: path)
        try output.write(header)
        for position in order {
            let planned = tensors[position]
            let tensor = try produce(position)
            guard tensor.dtype == planned.dtype, tensor.shape == planned.shape else {
                throw SafetensorsWriteError.producedMismatch(tensor: planned.name)
            }
            try tensor.storage.withUnsafeBytes { bytes in try output.write(bytes) }
            tensor.storage.releaseResidentPages()
        }
        try output.commit()
    }

    /// Writes a checkpoint; quantized tensors are stored in the compressed-tensors layout
    /// (`CompressedTensorsLayout`), dense ones marked sparse compactly when that is smaller
    /// (`SparseLayout`), other dense ones as they are.
    public static func write(_ checkpoint: Checkpoint, to path: String, ordering: Ordering = .preserve) throws {
        let writer = StreamingCheckpointWriter(format: .safetensors, names: checkpoint.entries.map(\.name),
                                               metadata: checkpoint.metadata, destination: path)
        for (position, entry) in checkpoint.entries.enumerated() { try writer.add(entry, at: position) }
        try writer.write(to: path, ordering: ordering)
    }
}

/// Problems found while writing safetensors (programmer or pipeline errors, exit 1).
public enum SafetensorsWriteError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidTensorName(String)
    case invalidShape(tensor: String)
    case headerTooLarge(Int)
    case producedMismatch(tensor: String)
    case unsupportedPayload(tensor: String)

    public var description: String {
        switch self {
        case .invalidTensorName(let n): "cannot write tensor '\(n)': the name is reserved or repeated"
        case .invalidShape(let n): "cannot write tensor '\(n)': its byte count is undefined"
        case .headerTooLarge(let n): "cannot write a \(n)-byte safetensors header (limit 100000000)"
        case .producedMismatch(let n): "internal error: tensor '\(n)' changed dtype or shape while writing"
        case .unsupportedPayload(let n): "tensor '\(n)' is not dense and cannot be written as plain safetensors"
        }
    }
}
