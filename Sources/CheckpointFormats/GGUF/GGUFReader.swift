import TensorCore

/// Opens a GGUF file as a `Checkpoint` whose tensors are views into a memory map.
///
/// Plain ggml types (F32, F16, BF16, F64, I8–I64) become dense tensors; block types and opaque future
/// types become `.ggml` payloads. Shapes are given in numpy order (GGUF's ne reversed). Metadata
/// keeps its GGUF types and file order. Integer, FP8 and codebook tensors stored as
/// `GGUFQuantizedLayout` describes come out as their parts; `CheckpointReader.open` puts them back
/// together.
public enum GGUFReader {
    /// Maps and validates `path`. Throws `FileAccessError` (exit 1) or `GGUFError` (exit 65).
    public static func open(path: String) throws -> Checkpoint {
        let file = try MappedFile(path: path)
        return try checkpoint(from: file)
    }

    /// The validated header of a mapped file.
    public static func header(of file: MappedFile) throws(GGUFError) -> GGUFHeader {
        try GGUFHeader(fileBytes: file.bytes, file: file.path)
    }

    public static func checkpoint(from file: MappedFile) throws -> Checkpoint {
        let header = try header(of: file)
        var entries: [TensorEntry] = []
        entries.reserveCapacity(header.tensors.count)
        for info in header.tensors {
            let storage = ByteStorage(mapped: file, offset: header.dataOffset + info.offset, count: info.byteCount)
            let shape = Shape(info.dimensions.reversed())
            if let type = info.type, let dtype = type.denseDType {
                entries.append(TensorEntry(name: info.name, tensor: try DenseTensor(dtype: dtype, shape: shape, storage: storage)))
            } else {
                entries.append(TensorEntry(name: info.name, payload: .ggml(GGMLTensor(opaqueTypeID: info.typeID, shape: shape, storage: storage))))
            }
        }
        let metadata = header.metadata.map { MetadataEntry(key: $0.key, value: .gguf($0.value)) }
        return try Checkpoint(entries: entries, metadata: metadata)
    }
}
