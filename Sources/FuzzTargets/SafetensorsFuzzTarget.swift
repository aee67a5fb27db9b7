import CheckpointFormats

extension FileFuzzTarget {
    /// A `.safetensors` file: the header (length, JSON, dtypes, offsets), then the compact layouts put
    /// back together as `CheckpointReader` does (sparse parts, compressed-tensors and bitsandbytes
    /// quantization, shared slot arrays), then every tensor decoded.
    static let safetensors = FileFuzzTarget(
        name: "safetensors", summary: "safetensors header and tensors, with the sparse, quantized and shared layouts decoded",
        fileName: "model.safetensors"
    ) { file in
        let plain = try SafetensorsReader.open(path: file)
        try CheckpointTouch.touch(SharedTensorLayout.collapse(
            CompressedTensorsLayout.collapse(SparseLayout.collapse(plain, file: file), file: file), file: file))
    }
}
