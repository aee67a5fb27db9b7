#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorCore

/// Scratch disk space for tensor bytes that are made before they can be written (a streaming writer
/// must know every tensor's size before it writes the header, and a recipe step's result waits on
/// disk for the next step): `store` appends bytes to a temporary file and hands back a memory-mapped
/// view of them, so the process keeps no copy in memory.
///
/// The file sits in the output's folder (same file system and space as the output), is named like
/// `AtomicFileWriter`'s temporaries and is unlinked as soon as it is created: it vanishes with the
/// last mapping or when the process dies, even by SIGKILL. Each stored piece starts on a page
/// boundary and gets its own mapping, so dropping a view gives its memory back. Views smaller than
/// `inMemoryLimit` stay owned (a page and a mapping each would cost more than they save).
public final class TensorSpool {
    public let destination: String
    private var descriptor: Int32 = -1
    private var end = 0
    /// Bytes stored on disk so far (page padding included).
    public var byteCount: Int { end }
    /// Pieces smaller than this stay in memory.
    public static let inMemoryLimit = 1 << 16

    /// A spool for the output `destination` (nothing is created until the first large piece).
    public init(destination: String) {
        self.destination = destination
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// The bytes of `storage` as a view of the spool (or unchanged, when already mapped or small).
    public func store(_ storage: ByteStorage) throws -> ByteStorage {
        guard !storage.isMapped, storage.count >= TensorSpool.inMemoryLimit else { return storage }
        try openIfNeeded()
        let offset = end
        try storage.withUnsafeBytes { try writeAll($0, at: offset) }
        let page = MappedFile.pageSize
        end = (offset + storage.count + page - 1) / page * page
        let file = try MappedFile(descriptor: descriptor, offset: offset, length: storage.count, path: destination + " (spool)")
        return ByteStorage(mapped: file, offset: 0, count: storage.count)
    }

    /// `entry` with its dense or ggml bytes moved to the spool (other payloads are returned as they are).
    public func store(_ entry: TensorEntry) throws -> TensorEntry {
        var entry = entry
        switch entry.payload {
        case .dense(let t): entry.payload = .dense(try DenseTensor(dtype: t.dtype, shape: t.shape, storage: store(t.storage)))
        case .ggml(let t):
            let storage = try store(t.storage)
            entry.payload = .ggml(t.type.map { GGMLTensor(type: $0, shape: t.shape, storage: storage) }
                                  ?? GGMLTensor(opaqueTypeID: t.typeID, shape: t.shape, storage: storage))
        case .quantized, .shared: break
        }
        return entry
    }

    private func openIfNeeded() throws(FileAccessError) {
        guard descriptor < 0 else { return }
        let (folder, prefix) = AtomicFileWriter.processPrefix(for: destination)
        var template = Array((folder + "/" + prefix + "spool-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw .cannotWrite(path: destination, reason: "cannot create a spool file: " + String(cString: strerror(errno))) }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        descriptor = fd
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(FileAccessError) {
        var done = 0
        while done < bytes.count {
            let n = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw .cannotWrite(path: destination, reason: "spool: " + String(cString: strerror(errno)))
            }
            done += n
        }
    }
}

extension TensorEntry {
    /// Gives back the resident pages of the entry's mapped bytes (see `ByteStorage.releaseResidentPages`).
    public func releaseResidentPages() {
        switch payload {
        case .dense(let t): t.storage.releaseResidentPages()
        case .ggml(let t): t.storage.releaseResidentPages()
        case .quantized, .shared: break
        }
    }
}
