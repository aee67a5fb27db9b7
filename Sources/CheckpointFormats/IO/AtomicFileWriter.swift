#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorCore

/// Writes a file so that it appears at its path only when complete.
///
/// Bytes go to a temporary file `.<name>.modelpress-tmp-<pid>-XXXXXX` in the destination folder;
/// `commit()` renames it over the destination (atomic on POSIX). If the writer is dropped without
/// `commit()`, the temporary file is removed, so a failed run leaves nothing at the output path (and
/// an existing file there, possibly memory-mapped by a reader, is never truncated).
///
/// A run killed outright (SIGKILL, power loss) cannot remove its temporary file; the next writer of
/// the same destination removes such leftovers (`removeStaleTemporaries(for:)`): only regular files
/// named with that destination's prefix whose process id no longer runs, so a concurrent writer's
/// file and anything not made by ModelPress are never touched.
public final class AtomicFileWriter {
    public let destination: String
    public let temporaryPath: String
    private var descriptor: Int32
    private var buffer: [UInt8] = []
    private let bufferCapacity = 1 << 20
    private var committed = false
    /// Bytes written so far.
    public private(set) var byteCount = 0

    /// The prefix of temporary files for `destination` (used to clean up after killed runs).
    public static func temporaryPrefix(for destination: String) -> (folder: String, prefix: String) {
        let slash = destination.lastIndex(of: "/")
        let folder = slash.map { String(destination[..<$0]) } ?? "."
        let name = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
        return (folder.isEmpty ? "/" : folder, "." + name + ".modelpress-tmp-")
    }

    /// The name prefix of this process's temporary files for `destination`: the destination's prefix
    /// followed by `<pid>-`, so leftovers can be told apart from a running writer's files.
    public static func processPrefix(for destination: String) -> (folder: String, prefix: String) {
        let (folder, prefix) = temporaryPrefix(for: destination)
        return (folder, prefix + "\(getpid())-")
    }

    /// Removes temporary files of `destination` left by processes that no longer run (killed before
    /// they could clean up), including the temporary files of a `.zst` output's inner temporary file.
    /// Only regular files named `.<name>.modelpress-tmp-<pid>-…` (or with one more leading `.`) whose
    /// `<pid>` is not a running process are removed. Returns the names removed; errors are ignored.
    /// The byte offset of `d_name` in a directory record.
    private static let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!

    @discardableResult
    public static func removeStaleTemporaries(for destination: String) -> [String] {
        let (folder, prefix) = temporaryPrefix(for: destination)
        guard let directory = opendir(folder) else { return [] }
        var candidates: [String] = []
        while let entry = readdir(directory) {
            // Read the name in place: glibc's records can be shorter than `dirent`, so copying the
            // whole `d_name` array would read past the record (a fuzzing finding, under ASan).
            let name = String(cString: (UnsafeRawPointer(entry) + AtomicFileWriter.nameOffset).assumingMemoryBound(to: CChar.self))
            if name.hasPrefix(prefix) || name.hasPrefix("." + prefix) { candidates.append(name) }
        }
        closedir(directory)
        var removed: [String] = []
        for name in candidates {
            let rest = name.dropFirst(name.hasPrefix(prefix) ? prefix.count : prefix.count + 1)
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 10, rest.dropFirst(digits.count).first == "-",
                  let pid = Int32(digits), pid > 0, pid != getpid() else { continue }
            // Alive (or owned by another user: EPERM) means the file may still be in use.
            if kill(pid, 0) == 0 || errno != ESRCH { continue }
            let path = folder + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            if unlink(path) == 0 { removed.append(name) }
        }
        return removed
    }

    public init(destination: String) throws(FileAccessError) {
        self.destination = destination
        AtomicFileWriter.removeStaleTemporaries(for: destination)
        let (folder, prefix) = AtomicFileWriter.processPrefix(for: destination)
        var template = Array((folder + "/" + prefix + "XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw .cannotWrite(path: destination, reason: String(cString: strerror(errno))) }
        fchmod(fd, 0o644)
        descriptor = fd
        temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        buffer.reserveCapacity(bufferCapacity)
    }

    deinit {
        if !committed {
            if descriptor >= 0 { close(descriptor) }
            unlink(temporaryPath)
        }
    }

    /// Appends bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(FileAccessError) {
        byteCount += bytes.count
        if buffer.count + bytes.count <= bufferCapacity {
            buffer.append(contentsOf: bytes)
            return
        }
        try flush()
        if bytes.count >= bufferCapacity {
            try writeAll(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    /// Appends bytes.
    public func write(_ bytes: [UInt8]) throws(FileAccessError) {
        do { try bytes.withUnsafeBytes { try write($0) } } catch let e as FileAccessError { throw e } catch { fatalError("unreachable") }
    }

    /// Appends `count` zero bytes.
    public func writeZeros(_ count: Int) throws(FileAccessError) {
        try write([UInt8](repeating: 0, count: count))
    }

    /// Flushes, closes and renames the temporary file over the destination.
    public func commit() throws(FileAccessError) {
        try flush()
        guard close(descriptor) == 0 else { descriptor = -1; throw .cannotWrite(path: destination, reason: String(cString: strerror(errno))) }
        descriptor = -1
        guard rename(temporaryPath, destination) == 0 else { throw .cannotWrite(path: destination, reason: String(cString: strerror(errno))) }
        committed = true
    }

    private func flush() throws(FileAccessError) {
        guard !buffer.isEmpty else { return }
        let pending = buffer
        buffer.removeAll(keepingCapacity: true)
        do { try pending.withUnsafeBytes { try writeAll($0) } } catch let e as FileAccessError { throw e } catch { fatalError("unreachable") }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws(FileAccessError) {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw .cannotWrite(path: destination, reason: String(cString: strerror(errno)))
            }
            offset += n
        }
    }
}
