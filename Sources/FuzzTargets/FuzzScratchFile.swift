import Foundation

/// The per-process file a path-based reader opens: each input is written to the same path (in a
/// folder of its own, so a sharded index in the input can only name the input itself) and read
/// back by the reader.
///
/// Invariant: one folder per process and target, under `/dev/shm` when it exists (no disk traffic),
/// else the system temporary folder; the file is overwritten for every input and removed only when
/// the process exits (the fuzzer may kill it at any point). One input at a time uses it (a lock), so
/// tests may run targets in parallel.
struct FuzzScratchFile: Sendable {
    let path: String

    /// The scratch file of `target`, named `name` (the extension matters to some readers).
    init(target: String, name: String) {
        let folder = FuzzScratchFile.processFolder + "/" + target
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        path = folder + "/" + name
        _ = FuzzScratchFile.removalAtExit
    }

    /// This process's folder of scratch files.
    static let processFolder: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        return base + "/modelpress-fuzz-\(ProcessInfo.processInfo.processIdentifier)"
    }()

    /// Registers, once, the removal of `processFolder` when the process exits normally.
    private static let removalAtExit: Void = {
        atexit { try? FileManager.default.removeItem(atPath: FuzzScratchFile.processFolder) }
    }()

    private let lock = NSLock()

    /// Replaces the file's content with `bytes`, then runs `body` on its path, holding the file.
    func with(_ bytes: UnsafeRawBufferPointer, _ body: @Sendable (String) throws -> Void) throws {
        lock.lock()
        defer { lock.unlock() }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        try body(path)
    }
}
