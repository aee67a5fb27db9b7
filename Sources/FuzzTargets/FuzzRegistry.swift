/// Every fuzz target, by name: one per reader (safetensors, GGUF, imatrix `.dat` and GGUF, recipes,
/// `adapter_config.json`, zstd containers).
///
/// Invariant: names are unique and each is the name of a folder of `Fuzz/Corpus`.
public enum FuzzRegistry {
    public static let all: [any FuzzTarget] = [
        FileFuzzTarget.safetensors, FileFuzzTarget.gguf, FileFuzzTarget.imatrix, RecipeFuzzTarget(), AdapterConfigFuzzTarget(), FileFuzzTarget.zstd,
    ]

    /// The target called `name`, if any.
    public static func target(named name: String) -> (any FuzzTarget)? {
        all.first { $0.name == name }
    }
}
