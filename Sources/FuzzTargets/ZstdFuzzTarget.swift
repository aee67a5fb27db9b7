import CheckpointFormats

extension FileFuzzTarget {
    /// A `.zst` checkpoint, ModelPress's seekable archive or a plain zstd stream: the seek table and
    /// index, the header read from the first frames alone, then the whole file decoded and read as a
    /// checkpoint, every tensor decoded.
    static let zstd = FileFuzzTarget(
        name: "zstd", summary: "zstd containers (seek table, index, frames) and the checkpoint inside", fileName: "model.safetensors.zst"
    ) { file in
        _ = try ZstdCheckpoint.innerFormat(path: file)
        _ = try ZstdCheckpoint.denseSafetensorsHeader(path: file)
        try CheckpointTouch.touch(ZstdCheckpoint.open(path: file, threadCount: 1))
    }
}
