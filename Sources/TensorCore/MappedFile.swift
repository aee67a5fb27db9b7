#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file. The mapping lives as long as this object.
///
/// Invariant: `bytes` covers exactly `byteCount` bytes of the file as it was when mapped
/// (an empty file maps to an empty buffer without calling mmap).
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let byteCount: Int
    private let base: UnsafeMutableRawPointer?

    /// Maps `path` read-only. Throws `FileAccessError` when it cannot be opened or mapped.
    public init(path: String) throws(FileAccessError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .notARegularFile(path: path) }
        byteCount = Int(info.st_size)
        if byteCount == 0 {
            base = nil
            return
        }
        let address = mmap(nil, byteCount, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let address, address != MAP_FAILED else {
            throw .cannotOpen(path: path, reason: "mmap failed: " + String(cString: strerror(errno)))
        }
        madvise(address, byteCount, MADV_SEQUENTIAL)
        base = address
    }

    /// Maps `length` bytes of the open file `descriptor` from `offset` (a multiple of the page size)
    /// read-only; `path` names the file in messages. The descriptor may be closed afterwards.
    public init(descriptor: Int32, offset: Int, length: Int, path: String) throws(FileAccessError) {
        self.path = path
        byteCount = length
        if length == 0 {
            base = nil
            return
        }
        let address = mmap(nil, length, PROT_READ, MAP_PRIVATE, descriptor, off_t(offset))
        guard let address, address != MAP_FAILED else {
            throw .cannotOpen(path: path, reason: "mmap failed: " + String(cString: strerror(errno)))
        }
        base = address
    }

    deinit {
        if let base { munmap(base, byteCount) }
    }

    /// The system's page size (the unit of `releaseResidentPages`).
    public static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Drops this process's resident pages of bytes `range` (whole pages inside it): the memory goes
    /// back to the system and a later read faults the bytes in again from the file. Streaming code
    /// calls it once it is done with a tensor, so the resident set stays near one tensor.
    public func releaseResidentPages(_ range: Range<Int>) {
        guard let base, !range.isEmpty else { return }
        let page = MappedFile.pageSize
        let start = (range.lowerBound + page - 1) / page * page
        let end = range.upperBound == byteCount ? byteCount : range.upperBound / page * page
        guard start < end else { return }
        madvise(base + start, end - start, MADV_DONTNEED)
    }

    /// The mapped bytes.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: byteCount) }
}

/// Failures to reach a file (exit code 1: an I/O failure, not bad data).
public enum FileAccessError: Error, Equatable, Sendable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case notARegularFile(path: String)
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let p, let r): "\(p): cannot open: \(r)"
        case .notARegularFile(let p): "\(p): not a regular file"
        case .cannotWrite(let p, let r): "\(p): cannot write: \(r)"
        }
    }
}
