import CheckpointFormats

extension FileFuzzTarget {
    /// An importance matrix, legacy `.dat` or GGUF (told apart by the magic, as `ImportanceMatrix.load`
    /// does), then every entry read.
    static let imatrix = FileFuzzTarget(name: "imatrix", summary: "llama-imatrix files, legacy .dat and GGUF", fileName: "imatrix.dat") { file in
        let matrix = try ImportanceMatrix.load(path: file)
        for name in matrix.names { _ = matrix[name]?.count }
    }
}
