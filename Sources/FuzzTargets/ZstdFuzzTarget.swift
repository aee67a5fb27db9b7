import CheckpointFormats

/// A `.zst` checkpoint, ModelPress's seekable archive or a plain zstd stream: the seek table and
/// index, the header read from the first frames alone, then the whole file decoded and read as a
/// checkpoint, every tensor decoded.
struct ZstdFuzzTarget: FuzzTarget {
    let name = "zstd"
    let summary = "zstd containers (seek table, index, frames) and the checkpoint inside"
    private let scratch = FuzzScratchFile(target: "zstd", name: "model.safetensors.zst")

    func run(_ input: UnsafeRawBufferPointer) -> FuzzOutcome {
        outcome {
            try scratch.with(input) { file in
                _ = try ZstdCheckpoint.innerFormat(path: file)
                _ = try ZstdCheckpoint.denseSafetensorsHeader(path: file)
                try CheckpointTouch.touch(ZstdCheckpoint.open(path: file, threadCount: 1))
            }
        }
    }
}
