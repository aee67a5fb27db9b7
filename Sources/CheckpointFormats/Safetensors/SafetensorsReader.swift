import TensorCore

/// Opens a safetensors file as a `Checkpoint` whose tensors are views into a memory map.
///
/// Nothing but the header is read up front; tensor bytes are paged in when a pass or writer touches them.
public enum SafetensorsReader {
    /// Maps and validates `path`. Throws `FileAccessError` (exit 1) or `SafetensorsError` (exit 65).
    public static func open(path: String) throws -> Checkpoint {
        let file = try MappedFile(path: path)
        return try checkpoint(from: file)
    }

    /// The header of a mapped file, validated.
    public static func header(of file: MappedFile) throws(SafetensorsError) -> SafetensorsHeader {
        try SafetensorsHeader(fileBytes: file.bytes, file: file.path)
    }

    /// Builds the checkpoint of an already-mapped file.
    public static func checkpoint(from file: MappedFile) throws -> Checkpoint {
        let header = try header(of: file)
        var entries: [TensorEntry] = []
        entries.reserveCapacity(header.tensors.count)
        for info in header.tensors {
            let storage = ByteStorage(mapped: file, offset: header.dataOffset + info.dataRange.lowerBound, count: info.dataRange.count)
            entries.append(TensorEntry(name: info.name, tensor: try DenseTensor(dtype: info.dtype, shape: info.shape, storage: storage)))
        }
        return try Checkpoint(entries: entries, metadata: header.metadata.map { MetadataEntry(key: $0.key, value: .string($0.value)) })
    }
}
