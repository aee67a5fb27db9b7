import TensorCore

/// The validated header of a GGUF v3 (or v2) file: metadata in file order, tensor infos, and where
/// the data section starts.
///
/// Layout: `"GGUF"` · u32 version · u64 tensor_count · u64 kv_count · KVs · tensor infos · zero
/// padding to the alignment · data. Each tensor's data starts at `dataOffset + offset` and is padded
/// with zeros to the alignment; the reader requires offset[i] = Σ_{j<i} align_up(nbytes[j], A), as
/// llama.cpp's loader does.
public struct GGUFHeader: Sendable {
    public static let magic: [UInt8] = [0x47, 0x47, 0x55, 0x46]
    public static let defaultAlignment = 32

    /// One tensor-info record. `dimensions` are in ggml order (ne[0] innermost).
    public struct TensorInfo: Sendable, Equatable {
        public let name: String
        public let dimensions: [Int]
        /// The stored ggml type id.
        public let typeID: UInt32
        /// The known type, or nil for a future id kept as opaque bytes.
        public let type: GGMLType?
        /// Offset relative to the data section.
        public let offset: Int
        /// Bytes of data (for opaque types: up to the next tensor, padding included).
        public let byteCount: Int

        /// The numpy-order shape (the reverse of `dimensions`).
        public var shape: Shape { Shape(dimensions.reversed()) }
    }

    public let version: UInt32
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [TensorInfo]
    public let alignment: Int
    public let dataOffset: Int

    /// Parses and validates the header of a whole file's bytes.
    public init(fileBytes bytes: UnsafeRawBufferPointer, file: String) throws(GGUFError) {
        var cursor = GGUFByteCursor(bytes: bytes, file: file)
        guard bytes.count >= 4 else { throw cursor.fail(.truncated("the magic")) }
        guard Array(bytes.prefix(4)) == GGUFHeader.magic else { throw cursor.fail(.badMagic) }
        cursor.position = 4
        let version = try cursor.read(UInt32.self, "the version")
        if version & 0xFFFF == 0 && version != 0 { throw cursor.fail(.bigEndian) }
        guard version == 2 || version == 3 else { throw cursor.fail(.unsupportedVersion(version)) }
        let tensorCount = try cursor.read(UInt64.self, "the tensor count")
        let kvCount = try cursor.read(UInt64.self, "the metadata count")
        guard kvCount <= UInt64(cursor.remaining / 13) else { throw cursor.fail(.countTooLarge(what: "metadata", count: kvCount)) }

        var metadata: [(key: String, value: GGUFValue)] = []
        var keys = Set<[UInt8]>()
        for i in 0..<Int(kvCount) {
            let key = try cursor.readString("metadata key #\(i)")
            guard !key.isEmpty else { throw cursor.fail(.emptyKey) }
            guard keys.insert(Array(key.utf8)).inserted else { throw cursor.fail(.duplicateKey(key)) }
            let rawType = try cursor.read(UInt32.self, "metadata '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else { throw cursor.fail(.unknownValueType(key: key, type: rawType)) }
            metadata.append((key, try cursor.readValue(type, key: key)))
        }

        var alignment = GGUFHeader.defaultAlignment
        if let value = metadata.first(where: { $0.key == "general.alignment" })?.value {
            guard case .uint32(let a) = value else { throw cursor.fail(.badAlignment("must be UINT32, found \(value.type.name)")) }
            guard a != 0, a & (a - 1) == 0 else { throw cursor.fail(.badAlignment("\(a) is not a power of two")) }
            alignment = Int(a)
        }

        guard tensorCount <= UInt64(cursor.remaining / 24) else { throw cursor.fail(.countTooLarge(what: "tensor", count: tensorCount)) }
        var raw: [(name: String, dims: [Int], typeID: UInt32, type: GGMLType?, offset: UInt64, bytes: Int?, elements: Int64)] = []
        var names = Set<[UInt8]>()
        for i in 0..<Int(tensorCount) {
            let name = try cursor.readString("tensor info #\(i)")
            guard name.utf8.count < 64 else { throw cursor.fail(.nameTooLong(name)) }
            guard names.insert(Array(name.utf8)).inserted else { throw cursor.fail(.duplicateTensor(name)) }
            let nDims = try cursor.read(UInt32.self, "tensor '\(name)'")
            guard nDims <= 4 else { throw cursor.fail(.tooManyDimensions(tensor: name, count: nDims)) }
            var dims: [Int] = []
            var elements: Int64 = 1
            for _ in 0..<nDims {
                let d = try cursor.read(Int64.self, "tensor '\(name)'")
                guard d >= 0 else { throw cursor.fail(.negativeDimension(tensor: name)) }
                let (p, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else { throw cursor.fail(.elementCountOverflow(tensor: name)) }
                elements = p
                dims.append(Int(d))
            }
            let typeID = try cursor.read(UInt32.self, "tensor '\(name)'")
            let offset = try cursor.read(UInt64.self, "tensor '\(name)'")
            let type = GGMLType(rawValue: typeID)
            guard type != nil || (typeID >= 43 && typeID < 1024) else { throw cursor.fail(.invalidTensorType(tensor: name, type: typeID)) }
            var byteCount: Int?
            if let type {
                let rowLength = dims.first ?? 1
                guard rowLength % type.blockSize == 0 else {
                    throw cursor.fail(.rowNotWholeBlocks(tensor: name, rowLength: rowLength, type: type.name))
                }
                // Whole blocks, so nil here means the row's byte count overflows.
                guard let rowBytes = type.rowByteCount(elements: rowLength) else { throw cursor.fail(.elementCountOverflow(tensor: name)) }
                var total = rowBytes
                for d in dims.dropFirst() {
                    let (p, overflow) = total.multipliedReportingOverflow(by: d)
                    guard !overflow else { throw cursor.fail(.elementCountOverflow(tensor: name)) }
                    total = p
                }
                byteCount = total
            }
            raw.append((name, dims, typeID, type, offset, byteCount, elements))
        }

        let dataOffset = GGUFHeader.alignUp(cursor.position, alignment)
        var expected = 0
        var tensors: [TensorInfo] = []
        for (i, t) in raw.enumerated() {
            guard t.offset == UInt64(expected) else { throw cursor.fail(.offsetMismatch(tensor: t.name, expected: UInt64(expected), actual: t.offset)) }
            let byteCount: Int
            if let known = t.bytes {
                byteCount = known
            } else if i + 1 < raw.count {   // opaque: up to the next tensor
                guard raw[i + 1].offset >= t.offset, raw[i + 1].offset <= UInt64(Int.max) else {
                    throw cursor.fail(.offsetMismatch(tensor: raw[i + 1].name, expected: t.offset, actual: raw[i + 1].offset))
                }
                byteCount = Int(raw[i + 1].offset - t.offset)
            } else {
                guard bytes.count >= dataOffset + expected else { throw cursor.fail(.dataOutOfBounds(tensor: t.name)) }
                byteCount = bytes.count - dataOffset - expected
            }
            let (end, overflow) = (dataOffset + expected).addingReportingOverflow(byteCount)
            guard !overflow, end <= bytes.count else { throw cursor.fail(.dataOutOfBounds(tensor: t.name)) }
            // A known type's bytes follow from its elements; an opaque one's elements must at least fit
            // its bytes, or element counts summed over tensors could overflow (a fuzzing finding).
            guard t.type != nil || t.elements / 8 <= Int64(byteCount) else {
                throw cursor.fail(.opaqueElementsExceedData(tensor: t.name, elements: t.elements, bytes: byteCount))
            }
            tensors.append(TensorInfo(name: t.name, dimensions: t.dims, typeID: t.typeID, type: t.type, offset: expected, byteCount: byteCount))
            expected = GGUFHeader.alignUp(expected + byteCount, alignment)
        }
        // The file ends after the last tensor's padding or, leniently, anywhere in that padding (llama.cpp's
        // loader only checks that each tensor's data is inside the file).
        if let last = tensors.last {
            let dataEnd = dataOffset + last.offset + last.byteCount
            let paddedEnd = dataOffset + expected
            guard bytes.count >= dataEnd && bytes.count <= paddedEnd else { throw cursor.fail(.trailingBytes(expectedEnd: paddedEnd, fileSize: bytes.count)) }
        } else {
            guard bytes.count >= cursor.position && bytes.count <= dataOffset else {
                throw cursor.fail(.trailingBytes(expectedEnd: dataOffset, fileSize: bytes.count))
            }
        }
        self.version = version
        self.metadata = metadata
        self.tensors = tensors
        self.alignment = alignment
        self.dataOffset = dataOffset
    }

    /// `x` rounded up to a multiple of `alignment` (a power of two).
    public static func alignUp(_ x: Int, _ alignment: Int) -> Int { (x + alignment - 1) / alignment * alignment }
}
