import CheckpointFormats

/// A `.gguf` file: header, metadata, tensor infos and data layout, then the integer/FP8/codebook
/// and shared layouts put back together as `CheckpointReader` does, then every tensor decoded
/// (which runs the ggml block dequantizers).
struct GGUFFuzzTarget: FuzzTarget {
    let name = "gguf"
    let summary = "GGUF header, metadata and tensors, with block types dequantized and ModelPress layouts decoded"
    private let scratch = FuzzScratchFile(target: "gguf", name: "model.gguf")

    func run(_ input: UnsafeRawBufferPointer) -> FuzzOutcome {
        outcome {
            try scratch.with(input) { file in
                let checkpoint = try SharedTensorLayout.collapse(GGUFQuantizedLayout.collapse(GGUFReader.open(path: file), file: file), file: file)
                try CheckpointTouch.touch(checkpoint)
            }
        }
    }
}
