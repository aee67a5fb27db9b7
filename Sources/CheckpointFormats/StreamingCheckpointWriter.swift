import TensorCore

/// Writes a checkpoint whose tensors arrive one at a time, in any order, keeping about one tensor
/// in memory: each entry is turned into what the file stores as soon as it arrives (the layouts'
/// `Expansion`s: shared arrays, then compressed-tensors parts and compact sparse parts for
/// safetensors, or `GGUFQuantizedLayout` parts for GGUF), and bytes made in memory go to a
/// `TensorSpool` on disk until `write` copies them to the file after the header.
///
/// Invariant: adding the entries of a checkpoint in order and writing gives the same bytes as
/// expanding the whole checkpoint and writing it (`SafetensorsWriter.write(_:to:)` and
/// `GGUFWriter.write(_:to:)` are this writer). Entries added out of order are stored at their
/// positions, with the same bytes.
public final class StreamingCheckpointWriter {
    public enum Format: Sendable { case safetensors, gguf }

    private let format: Format
    private let metadata: [MetadataEntry]
    private var shared: SharedTensorLayout.Expansion
    private var compressed = CompressedTensorsLayout.Expansion()
    private var sparse: SparseLayout.Expansion
    private var quantized: GGUFQuantizedLayout.Expansion
    private var stored: [[TensorEntry]?]
    private let spool: TensorSpool

    /// A writer for a checkpoint of the tensors `names` (in output order) with `metadata`; the
    /// spool and messages use `destination`, the path the file will end up at.
    public init(format: Format, names: [String], metadata: [MetadataEntry], destination: String) {
        self.format = format
        self.metadata = metadata
        shared = SharedTensorLayout.Expansion(names: names)
        sparse = SparseLayout.Expansion(names: names, file: destination)
        quantized = GGUFQuantizedLayout.Expansion(names: names)
        stored = Array(repeating: nil, count: names.count)
        spool = TensorSpool(destination: destination)
    }

    /// Bytes waiting in the spool file.
    public var spooledByteCount: Int { spool.byteCount }

    /// Takes the final form of the tensor at `position` (each position once).
    public func add(_ entry: TensorEntry, at position: Int) throws {
        precondition(stored.indices.contains(position) && stored[position] == nil, "tensor position \(position) added twice or out of range")
        var parts = try shared.add(entry, position: position)
        switch format {
        case .safetensors: parts = try parts.flatMap { try compressed.add($0, position: position) }.flatMap { try sparse.add($0, position: position) }
        case .gguf: parts = try parts.flatMap { try quantized.add($0, position: position) }
        }
        stored[position] = try parts.map { try spool.store($0) }
    }

    /// Writes the file at `path` (atomically), once every position has its tensor.
    public func write(to path: String, ordering: SafetensorsWriter.Ordering = .preserve) throws {
        if let missing = stored.firstIndex(where: { $0 == nil }) { preconditionFailure("tensor position \(missing) was never added") }
        var parts = stored.map { $0! }
        for (position, slots) in try shared.slotEntries() { parts[position].insert(try spool.store(slots), at: 0) }
        try writeAll(to: path, ordering: ordering, parts: parts.flatMap { $0 })
    }

    private func writeAll(to path: String, ordering: SafetensorsWriter.Ordering, parts: [TensorEntry]) throws {
        switch format {
        case .safetensors:
            var planned: [SafetensorsWriter.PlannedTensor] = []
            var tensors: [DenseTensor] = []
            for part in parts {
                guard case .dense(let t) = part.payload else { throw SafetensorsWriteError.unsupportedPayload(tensor: part.name) }
                tensors.append(t)
                planned.append(.init(name: part.name, dtype: t.dtype, shape: t.shape))
            }
            let metadata = sparse.metadata(compressed.metadata(shared.metadata(metadata))).map { (key: $0.key, value: $0.value.description) }
            try SafetensorsWriter.write(to: path, metadata: metadata, tensors: planned, ordering: ordering) { tensors[$0] }
        case .gguf:
            var planned: [GGUFWriter.PlannedTensor] = []
            var storages: [ByteStorage] = []
            for part in parts {
                switch part.payload {
                case .dense(let t):
                    guard let type = GGMLType(denseDType: t.dtype) else { throw GGUFWriteError.unsupportedDType(tensor: part.name, dtype: t.dtype) }
                    planned.append(.init(name: part.name, typeID: type.rawValue, shape: t.shape, byteCount: t.byteCount))
                    storages.append(t.storage)
                case .ggml(let t):
                    planned.append(.init(name: part.name, typeID: t.typeID, shape: t.shape, byteCount: t.storage.count))
                    storages.append(t.storage)
                case .quantized, .shared:
                    preconditionFailure("the layouts' expansions leave no quantized or shared tensor")
                }
            }
            let metadata = quantized.metadata(shared.metadata(metadata).map { (key: $0.key, value: $0.value.ggufValue) })
            try GGUFWriter.write(to: path, metadata: metadata, tensors: planned) { storages[$0] }
        }
    }
}
