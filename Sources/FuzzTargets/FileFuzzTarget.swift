/// A fuzz target whose reader opens a path (most readers map their file): each input is written to
/// the target's scratch file, then `read` opens and touches it.
///
/// Invariant: `read` only reads the path it is given (and files the reader derives from it in the
/// same private folder), so inputs cannot reach other files.
struct FileFuzzTarget: FuzzTarget {
    let name: String
    let summary: String
    private let scratch: FuzzScratchFile
    private let read: @Sendable (String) throws -> Void

    /// `fileName` is the scratch file's name (its extension matters to some readers).
    init(name: String, summary: String, fileName: String, read: @escaping @Sendable (String) throws -> Void) {
        self.name = name
        self.summary = summary
        self.scratch = FuzzScratchFile(target: name, name: fileName)
        self.read = read
    }

    func run(_ input: UnsafeRawBufferPointer) -> FuzzOutcome {
        outcome { try scratch.with(input, read) }
    }
}
