import CheckpointFormats

/// What a user does with a checkpoint once it opened: list it (names, shapes, encodings, sizes,
/// metadata) and decode every tensor to floats, as `modelpress inspect`, `check` and the error
/// report do. Exercising this is what fuzzes the tensor decoders (block codecs, packed integers,
/// sparse and shared layouts) behind the readers.
enum CheckpointTouch {
    /// Touches every tensor of `checkpoint`; throws what a decoder throws.
    static func touch(_ checkpoint: Checkpoint) throws {
        _ = CheckpointManifest(checkpoint)
        _ = checkpoint.byteCount
        _ = checkpoint.parameterCount
        for entry in checkpoint.metadata { _ = entry.value.description }
        for entry in checkpoint.entries {
            _ = entry.encodingName
            if let values = try entry.floatValues(threadCount: 1) {
                precondition(values.count == entry.elementCount, "decoded \(values.count) values for \(entry.elementCount) elements")
            }
        }
    }
}
