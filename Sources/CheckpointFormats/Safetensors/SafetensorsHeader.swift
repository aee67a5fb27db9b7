import TensorCore

/// The validated header of a safetensors file.
///
/// Layout: `[u64 LE length N][N bytes of UTF-8 JSON][data]`. Every check of the reference reader is
/// applied (header ≤ 100 MB, UTF-8, JSON shape, known dtypes, offsets sorted/contiguous/starting at 0,
/// byte count = dtype size × shape with overflow checks, data covering the file exactly), and duplicate
/// tensor names are rejected.
public struct SafetensorsHeader: Sendable, Equatable {
    /// The largest header the reference reader accepts.
    public static let maximumHeaderLength: UInt64 = 100_000_000

    /// One tensor's header entry; `dataRange` is relative to the start of the data section.
    public struct TensorInfo: Sendable, Equatable {
        public let name: String
        public let dtype: DType
        public let shape: Shape
        public let dataRange: Range<Int>
    }

    /// `__metadata__` in file order.
    public let metadata: [(key: String, value: String)]
    /// Tensors sorted by data offset.
    public let tensors: [TensorInfo]
    /// Byte offset of the data section in the file (8 + N).
    public let dataOffset: Int

    public static func == (a: SafetensorsHeader, b: SafetensorsHeader) -> Bool {
        a.tensors == b.tensors && a.dataOffset == b.dataOffset
            && a.metadata.map { $0.key } == b.metadata.map { $0.key } && a.metadata.map { $0.value } == b.metadata.map { $0.value }
    }

    /// Parses and validates the header of a whole file's bytes. `file` names the file in errors.
    public init(fileBytes bytes: UnsafeRawBufferPointer, file: String) throws(SafetensorsError) {
        try self.init(prefix: bytes, fileSize: bytes.count, file: file)
    }

    /// Parses and validates the header from the first bytes of a file of `fileSize` bytes (`prefix`
    /// must hold the 8-byte length and the whole header; the data need not be there).
    public init(prefix bytes: UnsafeRawBufferPointer, fileSize: Int, file: String) throws(SafetensorsError) {
        func fail(_ kind: SafetensorsError.Kind) -> SafetensorsError { SafetensorsError(file: file, kind: kind) }
        guard bytes.count >= 8, fileSize >= 8 else { throw fail(.headerTooSmall(fileSize: fileSize)) }
        let length = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard length <= SafetensorsHeader.maximumHeaderLength else { throw fail(.headerTooLarge(length: length)) }
        guard length <= UInt64(fileSize - 8), length <= UInt64(bytes.count - 8) else { throw fail(.invalidHeaderLength(length: length, fileSize: fileSize)) }
        let headerEnd = 8 + Int(length)
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<headerEnd])
        guard String(validating: headerBytes.bindMemory(to: UInt8.self), as: UTF8.self) != nil else { throw fail(.invalidUTF8) }
        let json: JSONValue
        do { json = try JSONParser.parse(headerBytes) } catch { throw fail(.invalidJSON(error.description)) }
        guard let members = json.objectMembers else { throw fail(.invalidJSON("the header is \(json.kindName), not an object")) }

        var metadata: [(key: String, value: String)] = []
        var infos: [(info: TensorInfo, order: Int)] = []
        // Names compare as bytes (as in the reference and `Checkpoint`), not by Unicode equivalence.
        var seen = Set<[UInt8]>()
        for (order, member) in members.enumerated() {
            guard seen.insert(Array(member.key.utf8)).inserted else {
                throw fail(member.key == "__metadata__" ? .invalidJSON("__metadata__ appears more than once") : .duplicateTensor(member.key))
            }
            if member.key == "__metadata__" {
                metadata = try SafetensorsHeader.parseMetadata(member.value, fail: fail)
                continue
            }
            infos.append((try SafetensorsHeader.parseTensor(name: member.key, member.value, fail: fail), order))
        }
        // Sort by (begin, end), then by header order for ties (zero-size tensors).
        infos.sort { a, b in
            (a.info.dataRange.lowerBound, a.info.dataRange.upperBound, a.order) < (b.info.dataRange.lowerBound, b.info.dataRange.upperBound, b.order)
        }
        var end = 0
        for (info, _) in infos {
            guard info.dataRange.lowerBound == end else { throw fail(.invalidOffset(tensor: info.name)) }
            guard let byteCount = info.dtype.byteCount(elementCount: info.shape.elementCount) else {
                let (_, overflow) = info.shape.elementCount.multipliedReportingOverflow(by: info.dtype.bitsPerElement)
                throw fail(overflow ? .overflow(tensor: info.name) : .misalignedSubByte(tensor: info.name))
            }
            guard byteCount == info.dataRange.count else {
                throw fail(.byteCountMismatch(tensor: info.name, expected: byteCount, actual: info.dataRange.count))
            }
            end = info.dataRange.upperBound
        }
        let (dataEnd, overflow) = end.addingReportingOverflow(headerEnd)
        guard !overflow, dataEnd == fileSize else { throw fail(.incompleteBuffer(dataEnd: overflow ? Int.max : dataEnd, fileSize: fileSize)) }
        self.metadata = metadata
        self.tensors = infos.map(\.info)
        self.dataOffset = headerEnd
    }

    private static func parseMetadata(_ value: JSONValue, fail: (SafetensorsError.Kind) -> SafetensorsError) throws(SafetensorsError) -> [(key: String, value: String)] {
        if value == .null { return [] }
        guard let members = value.objectMembers else { throw fail(.invalidJSON("__metadata__ is \(value.kindName), not an object of strings")) }
        var seen = Set<[UInt8]>()
        var result: [(key: String, value: String)] = []
        for m in members {
            guard let s = m.value.stringValue else { throw fail(.invalidJSON("__metadata__ value of '\(m.key)' is \(m.value.kindName), not a string")) }
            guard seen.insert(Array(m.key.utf8)).inserted else { throw fail(.invalidJSON("__metadata__ repeats the key '\(m.key)'")) }
            result.append((m.key, s))
        }
        return result
    }

    private static func parseTensor(name: String, _ value: JSONValue, fail: (SafetensorsError.Kind) -> SafetensorsError) throws(SafetensorsError) -> TensorInfo {
        guard let members = value.objectMembers else { throw fail(.invalidJSON("tensor '\(name)' is \(value.kindName), not an object")) }
        var fields: [String: JSONValue] = [:]
        for m in members where ["dtype", "shape", "data_offsets"].contains(m.key) {
            guard fields.updateValue(m.value, forKey: m.key) == nil else { throw fail(.invalidJSON("tensor '\(name)' repeats the field '\(m.key)'")) }
        }
        guard let dtypeValue = fields["dtype"] else { throw fail(.invalidJSON("tensor '\(name)' has no dtype")) }
        guard let dtypeName = dtypeValue.stringValue else { throw fail(.invalidJSON("tensor '\(name)': dtype is \(dtypeValue.kindName)")) }
        guard let dtype = DType(rawValue: dtypeName) else { throw fail(.unknownDType(tensor: name, dtype: dtypeName)) }
        guard let shapeValue = fields["shape"]?.arrayElements else { throw fail(.invalidJSON("tensor '\(name)' has no shape array")) }
        var dims: [Int] = []
        for d in shapeValue {
            guard let v = d.nonNegativeInt else {
                if case .number(let text) = d, text.allSatisfy(\.isNumber) { throw fail(.overflow(tensor: name)) }
                throw fail(.invalidJSON("tensor '\(name)': shape entries must be non-negative integers"))
            }
            dims.append(v)
        }
        guard let offsets = fields["data_offsets"]?.arrayElements else { throw fail(.invalidJSON("tensor '\(name)' has no data_offsets array")) }
        guard offsets.count == 2 else { throw fail(.invalidJSON("tensor '\(name)': data_offsets must have 2 entries")) }
        guard let begin = offsets[0].nonNegativeInt, let end = offsets[1].nonNegativeInt else {
            throw fail(.invalidJSON("tensor '\(name)': data_offsets must be non-negative integers"))
        }
        guard end >= begin else { throw fail(.invalidOffset(tensor: name)) }
        let shape: Shape
        do { shape = try Shape(validating: dims) } catch { throw fail(.overflow(tensor: name)) }
        return TensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
    }
}
