/// Immutable bytes of one tensor: either a view into a memory-mapped file or an owned array.
///
/// A mapped view keeps its `MappedFile` alive; nothing is copied until a pass asks for owned data.
public struct ByteStorage: Sendable {
    private enum Backing: Sendable {
        case mapped(MappedFile, offset: Int)
        case owned([UInt8])
    }
    private let backing: Backing
    /// Number of bytes.
    public let count: Int

    /// A view of `count` bytes at `offset` in `file`. The caller has checked the range.
    public init(mapped file: MappedFile, offset: Int, count: Int) {
        precondition(offset >= 0 && count >= 0 && offset <= file.byteCount - count, "range outside the mapping")
        backing = .mapped(file, offset: offset)
        self.count = count
    }

    /// Owned bytes.
    public init(_ bytes: [UInt8]) {
        backing = .owned(bytes)
        count = bytes.count
    }

    /// Builds owned storage of `count` bytes, filled by `body` (uninitialized memory on entry).
    public init(count: Int, filling body: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        let array = try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            try body(UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
        self.init(array)
    }

    /// True when the bytes are a view of a memory-mapped file.
    public var isMapped: Bool {
        if case .mapped = backing { return true }
        return false
    }

    /// Gives back the resident pages of a mapped view (see `MappedFile.releaseResidentPages`); owned
    /// bytes are kept. The bytes stay readable.
    public func releaseResidentPages() {
        if case .mapped(let file, let offset) = backing { file.releaseResidentPages(offset..<(offset + count)) }
    }

    /// Calls `body` with the bytes.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch backing {
        case .mapped(let file, let offset):
            return try body(UnsafeRawBufferPointer(rebasing: file.bytes[offset..<(offset + count)]))
        case .owned(let array):
            return try array.withUnsafeBytes(body)
        }
    }

    /// A copy of the bytes.
    public var array: [UInt8] {
        switch backing {
        case .owned(let a): a
        case .mapped: withUnsafeBytes { [UInt8]($0) }
        }
    }
}

extension ByteStorage: Equatable {
    /// Byte-wise equality.
    public static func == (lhs: ByteStorage, rhs: ByteStorage) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return lhs.withUnsafeBytes { a in rhs.withUnsafeBytes { b in a.elementsEqual(b) } }
    }
}
