/// Bounds-checked little-endian reads over a file's bytes; every failure is a `GGUFError.truncated`.
struct GGUFByteCursor {
    let bytes: UnsafeRawBufferPointer
    let file: String
    var position = 0

    var remaining: Int { bytes.count - position }

    func fail(_ kind: GGUFError.Kind) -> GGUFError { GGUFError(file: file, kind: kind) }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws(GGUFError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw fail(.truncated(what())) }
        let v = T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
        position += size
        return v
    }

    /// A `u64` length-prefixed UTF-8 string (at most 1 GiB and at most the bytes left).
    mutating func readString(_ what: @autoclosure () -> String) throws(GGUFError) -> String {
        let length = try read(UInt64.self, what())
        guard length <= UInt64(min(remaining, 1 << 30)) else { throw fail(.stringTooLong(context: what(), length: length)) }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + Int(length))])
        position += Int(length)
        guard let s = String(validating: slice.bindMemory(to: UInt8.self), as: UTF8.self) else { throw fail(.invalidUTF8(context: what())) }
        return s
    }

    /// One metadata value of `type` (arrays: element type, u64 count, then the elements).
    mutating func readValue(_ type: GGUFValueType, key: String, allowArray: Bool = true) throws(GGUFError) -> GGUFValue {
        let what = "metadata '\(key)'"
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, what))
        case .int8: return .int8(try read(Int8.self, what))
        case .uint16: return .uint16(try read(UInt16.self, what))
        case .int16: return .int16(try read(Int16.self, what))
        case .uint32: return .uint32(try read(UInt32.self, what))
        case .int32: return .int32(try read(Int32.self, what))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, what)))
        case .bool: return .bool(try read(UInt8.self, what) != 0)
        case .string: return .string(try readString(what))
        case .uint64: return .uint64(try read(UInt64.self, what))
        case .int64: return .int64(try read(Int64.self, what))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, what)))
        case .array:
            guard allowArray else { throw fail(.nestedArray(key: key)) }
            let rawType = try read(UInt32.self, what)
            guard let elementType = GGUFValueType(rawValue: rawType) else { throw fail(.unknownValueType(key: key, type: rawType)) }
            guard elementType != .array else { throw fail(.nestedArray(key: key)) }
            let count = try read(UInt64.self, what)
            guard count <= 1 << 30, count <= UInt64(remaining / elementType.minimumByteCount) else {
                throw fail(.countTooLarge(what: "array '\(key)' element", count: count))
            }
            var values: [GGUFValue] = []
            values.reserveCapacity(Int(count))
            for _ in 0..<Int(count) { values.append(try readValue(elementType, key: key, allowArray: false)) }
            return .array(elementType: elementType, values: values)
        }
    }
}
