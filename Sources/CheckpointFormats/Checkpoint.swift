import TensorCore

/// An ordered list of named tensors plus metadata: what every reader produces and every writer takes.
///
/// Invariant: names are unique as byte strings (`index` maps each name's UTF-8 bytes to its position;
/// Unicode-equivalent but differently encoded names are distinct, as in the file formats); the order is
/// the file order (for safetensors, the order of the data offsets; for shards, shard by shard).
public struct Checkpoint: Sendable {
    public private(set) var entries: [TensorEntry]
    public var metadata: [MetadataEntry]
    private var index: [[UInt8]: Int]

    /// Builds a checkpoint; throws `CheckpointError.duplicateTensor` if a name repeats.
    public init(entries: [TensorEntry], metadata: [MetadataEntry] = []) throws(CheckpointError) {
        var index: [[UInt8]: Int] = [:]
        for (i, e) in entries.enumerated() {
            guard index.updateValue(i, forKey: Array(e.name.utf8)) == nil else { throw .duplicateTensor(e.name) }
        }
        self.entries = entries
        self.metadata = metadata
        self.index = index
    }

    public var count: Int { entries.count }

    /// The entry named `name`, if any.
    public subscript(name: String) -> TensorEntry? {
        index[Array(name.utf8)].map { entries[$0] }
    }

    /// Replaces the payload of the entry at `position` (name and order are kept).
    public mutating func replacePayload(at position: Int, with payload: TensorPayload) {
        entries[position].payload = payload
    }

    /// Replaces the payload and the sparsity mark of the entry at `position` with `entry`'s (the
    /// name and order are kept; `entry` must carry the same name).
    public mutating func replace(at position: Int, with entry: TensorEntry) {
        precondition(entry.name == entries[position].name, "replace(at:with:) keeps names")
        entries[position] = entry
    }

    /// The first metadata value stored under `key`.
    public func metadataValue(_ key: String) -> MetadataValue? {
        metadata.first(where: { $0.key.utf8.elementsEqual(key.utf8) })?.value
    }

    /// Total elements over all tensors.
    public var parameterCount: Int { entries.reduce(0) { $0 + $1.elementCount } }
    /// Total payload bytes over all tensors.
    public var byteCount: Int { entries.reduce(0) { $0 + $1.byteCount } }
}

/// One named tensor of a checkpoint.
public struct TensorEntry: Sendable {
    public let name: String
    public var payload: TensorPayload
    /// Set by pruning passes (and by readers of compact sparse storage): the zero pattern of a dense
    /// payload, which lets the safetensors writer store it compactly. Nil for ordinary tensors.
    public var sparsity: SparsityPattern?

    public init(name: String, payload: TensorPayload, sparsity: SparsityPattern? = nil) {
        self.name = name
        self.payload = payload
        self.sparsity = sparsity
    }

    public init(name: String, tensor: DenseTensor) {
        self.init(name: name, payload: .dense(tensor))
    }

    public var shape: Shape {
        switch payload {
        case .dense(let t): t.shape
        case .ggml(let t): t.shape
        case .quantized(let t): t.shape
        case .shared(let t): t.shape
        }
    }
    public var elementCount: Int { shape.elementCount }
    public var byteCount: Int {
        switch payload {
        case .dense(let t): t.byteCount
        case .ggml(let t): t.storage.count
        case .quantized(let t): CompressedTensorsLayout.storedByteCount(t)
        case .shared(let t): t.storedByteCount
        }
    }
    /// A short label of the storage, e.g. `F32` or `Q4_K`.
    public var encodingName: String {
        switch payload {
        case .dense(let t): t.dtype.rawValue
        case .ggml(let t): t.typeName
        case .quantized(let t): t.encodingName
        case .shared(let t): t.encodingName
        }
    }
}

/// What a tensor entry holds. Later passes add quantized and shared payloads.
public enum TensorPayload: Sendable {
    /// Plain dtype + shape + bytes, memory-mapped from the input until a pass touches it.
    case dense(DenseTensor)
    /// A tensor in a ggml block layout (Q4_K, Q8_0, ...), or an opaque future ggml type.
    case ggml(GGMLTensor)
    /// A format-neutral quantized tensor (integer, NF4 codebook or FP8 codes with scales).
    case quantized(QuantizedTensor)
    /// A view into a shared slot array (randomized parameter sharing, `share.rps`).
    case shared(SharedTensor)
}

extension QuantizedTensor {
    /// A short label such as `int4 sym group:128`, `int8 asym channel`, `nf4 group:64`, `fp8_e4m3 channel`;
    /// mixed column widths name the narrowest and widest column (0 for columns stored as zero), as in
    /// `int2-8 asym channel mixed` (`int4 sym channel mixed` when every column has 4 bits).
    public var encodingName: String {
        if let columnBits {
            let lo = columnBits.min() ?? 0, hi = columnBits.max() ?? 0
            return "int\(lo)\(lo == hi ? "" : "-\(hi)") \(symmetric ? "sym" : "asym") \(granularity) mixed"
        }
        return switch scheme {
        case .integer: "int\(bits) \(symmetric ? "sym" : "asym") \(granularity)"
        case .codebook(let values): values.count == 16 ? "nf4 \(granularity)" : "codebook\(bits) \(granularity)"
        case .float8(let kind): "fp8_\(kind.rawValue) \(granularity)"
        }
    }
}

/// A key and its value in checkpoint metadata (file order kept).
public struct MetadataEntry: Sendable, Equatable {
    public let key: String
    public var value: MetadataValue
    public init(key: String, value: MetadataValue) {
        self.key = key
        self.value = value
    }
}

/// A metadata value. safetensors stores strings only; GGUF values keep their exact GGUF type.
public enum MetadataValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case gguf(GGUFValue)

    public var description: String {
        switch self {
        case .string(let s): s
        case .gguf(let v): v.description
        }
    }

    /// The value as GGUF stores it (a safetensors string becomes a GGUF string).
    public var ggufValue: GGUFValue {
        switch self {
        case .string(let s): .string(s)
        case .gguf(let v): v
        }
    }
}

/// Structural problems of a checkpoint (exit 65).
public enum CheckpointError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    case duplicateTensor(String)

    public var description: String {
        switch self { case .duplicateTensor(let n): "duplicate tensor name '\(n)'" }
    }
}

/// Names, shapes and encodings of a checkpoint's tensors: what recipe binding and validation look at
/// before any weight is read.
public struct CheckpointManifest: Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: Shape
        /// The dense dtype, or nil for ggml and quantized payloads.
        public let dtype: DType?
        public let encoding: String
    }

    public let entries: [Entry]

    public init(_ checkpoint: Checkpoint) {
        entries = checkpoint.entries.map { e in
            let dtype: DType? = if case .dense(let t) = e.payload { t.dtype } else { nil }
            return Entry(name: e.name, shape: e.shape, dtype: dtype, encoding: e.encodingName)
        }
    }

    public init(entries: [Entry]) { self.entries = entries }
}

extension CheckpointManifest.Entry {
    public init(name: String, shape: Shape, dtype: DType?) {
        self.init(name: name, shape: shape, dtype: dtype, encoding: dtype?.rawValue ?? "?")
    }
}
