import CheckpointFormats

/// An importance matrix, legacy `.dat` or GGUF (told apart by the magic, as `ImportanceMatrix.load`
/// does), then every entry read.
struct ImatrixFuzzTarget: FuzzTarget {
    let name = "imatrix"
    let summary = "llama-imatrix files, legacy .dat and GGUF"
    private let scratch = FuzzScratchFile(target: "imatrix", name: "imatrix.dat")

    func run(_ input: UnsafeRawBufferPointer) -> FuzzOutcome {
        outcome {
            try scratch.with(input) { file in
                let matrix = try ImportanceMatrix.load(path: file)
                for name in matrix.names { _ = matrix[name]?.count }
            }
        }
    }
}
