import CheckpointFormats

/// A `.safetensors` file: the header (length, JSON, dtypes, offsets), then the compact layouts put
/// back together as `CheckpointReader` does (sparse parts, compressed-tensors and bitsandbytes
/// quantization, shared slot arrays), then every tensor decoded.
struct SafetensorsFuzzTarget: FuzzTarget {
    let name = "safetensors"
    let summary = "safetensors header and tensors, with the sparse, quantized and shared layouts decoded"
    private let scratch = FuzzScratchFile(target: "safetensors", name: "model.safetensors")

    func run(_ input: UnsafeRawBufferPointer) -> FuzzOutcome {
        outcome {
            try scratch.with(input) { file in
                let plain = try SafetensorsReader.open(path: file)
                let checkpoint = try SharedTensorLayout.collapse(
                    CompressedTensorsLayout.collapse(SparseLayout.collapse(plain, file: file), file: file), file: file)
                try CheckpointTouch.touch(checkpoint)
            }
        }
    }
}
