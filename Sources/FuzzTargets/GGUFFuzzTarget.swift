import CheckpointFormats

extension FileFuzzTarget {
    /// A `.gguf` file: header, metadata, tensor infos and data layout, then the integer/FP8/codebook
    /// and shared layouts put back together as `CheckpointReader` does, then every tensor decoded
    /// (which runs the ggml block dequantizers).
    static let gguf = FileFuzzTarget(
        name: "gguf", summary: "GGUF header, metadata and tensors, with block types dequantized and ModelPress layouts decoded",
        fileName: "model.gguf"
    ) { file in
        try CheckpointTouch.touch(SharedTensorLayout.collapse(GGUFQuantizedLayout.collapse(GGUFReader.open(path: file), file: file), file: file))
    }
}
