import CheckpointFormats
import TensorCore

/// Hand-built GGUF bytes, valid or not, for the hostile-input tests.
///
/// Nothing here validates: every function appends exactly the little-endian bytes it names, so a
/// test controls every byte the reader sees. `file(...)` is the one convenience that lays out a
/// whole file (header, KV records, tensor infos, padding, data) the way llama.cpp does, with
/// overridable counts, offsets and padding for the cases that must break one rule at a time.
public enum GGUFBytes {
    // MARK: Primitives

    public static func u8(_ v: UInt8) -> [UInt8] { [v] }
    public static func u32(_ v: UInt32) -> [UInt8] { le(v) }
    public static func i32(_ v: Int32) -> [UInt8] { le(v) }
    public static func u64(_ v: UInt64) -> [UInt8] { le(v) }
    public static func i64(_ v: Int64) -> [UInt8] { le(v) }

    /// A `gguf_string_t`: u64 byte length, then the UTF-8 bytes (no NUL).
    public static func string(_ s: String) -> [UInt8] { string(bytes: Array(s.utf8)) }

    /// A `gguf_string_t` over arbitrary bytes (for invalid UTF-8).
    public static func string(bytes: [UInt8]) -> [UInt8] { u64(UInt64(bytes.count)) + bytes }

    /// The 24-byte file header: magic, u32 version, u64 tensor count, u64 KV count.
    public static func header(version: UInt32 = 3, tensorCount: UInt64, kvCount: UInt64,
                              magic: [UInt8] = GGUFHeader.magic) -> [UInt8] {
        magic + u32(version) + u64(tensorCount) + u64(kvCount)
    }

    // MARK: Metadata

    /// A KV record with a raw value-type id and raw value bytes.
    public static func kv(_ key: String, type: UInt32, value: [UInt8]) -> [UInt8] {
        kv(keyBytes: Array(key.utf8), type: type, value: value)
    }

    /// A KV record whose key is arbitrary bytes.
    public static func kv(keyBytes: [UInt8], type: UInt32, value: [UInt8]) -> [UInt8] {
        string(bytes: keyBytes) + u32(type) + value
    }

    /// A KV record encoding `value` with its own type (arrays: element type, u64 count, elements).
    public static func kv(_ key: String, _ value: GGUFValue) -> [UInt8] {
        kv(key, type: value.type.rawValue, value: encode(value))
    }

    /// The bytes of a value without its type id.
    public static func encode(_ value: GGUFValue) -> [UInt8] {
        switch value {
        case .uint8(let v): [v]
        case .int8(let v): le(v)
        case .uint16(let v): le(v)
        case .int16(let v): le(v)
        case .uint32(let v): le(v)
        case .int32(let v): le(v)
        case .float32(let v): le(v.bitPattern)
        case .bool(let v): [v ? 1 : 0]
        case .string(let s): string(s)
        case .uint64(let v): le(v)
        case .int64(let v): le(v)
        case .float64(let v): le(v.bitPattern)
        case .array(let t, let values): u32(t.rawValue) + u64(UInt64(values.count)) + values.flatMap(encode)
        }
    }

    // MARK: Tensors

    /// A tensor-info record: name, u32 n_dims, `ne` (ggml order, ne[0] innermost) as i64, u32 type, u64 offset.
    public static func tensorInfo(_ name: String, ne: [Int64], type: UInt32, offset: UInt64) -> [UInt8] {
        tensorInfo(nameBytes: Array(name.utf8), ne: ne, type: type, offset: offset)
    }

    public static func tensorInfo(nameBytes: [UInt8], ne: [Int64], type: UInt32, offset: UInt64) -> [UInt8] {
        string(bytes: nameBytes) + u32(UInt32(ne.count)) + ne.flatMap(i64) + u32(type) + u64(offset)
    }

    /// One tensor for `file(...)`. `offset` nil means the offset llama.cpp expects
    /// (Σ of the previous tensors' sizes, each rounded up to the alignment).
    public struct Tensor: Sendable {
        public var name: String
        public var ne: [Int64]
        public var type: UInt32
        public var data: [UInt8]
        public var offset: UInt64?

        public init(_ name: String, ne: [Int64], type: UInt32, data: [UInt8], offset: UInt64? = nil) {
            self.name = name
            self.ne = ne
            self.type = type
            self.data = data
            self.offset = offset
        }

        /// An F32 tensor holding `values` with the given `ne` (defaults to one row of all values).
        public static func f32(_ name: String, _ values: [Float], ne: [Int64]? = nil) -> Tensor {
            Tensor(name, ne: ne ?? [Int64(values.count)], type: GGMLType.f32.rawValue, data: values.flatMap { le($0.bitPattern) })
        }
    }

    /// A whole file: header (counts default to the real ones), the KV records as given (already
    /// encoded with `kv`), the tensor infos, zero padding to `alignment` (when there are tensors, or
    /// when `padEmptyHeader`), then each tensor's data at its natural position, each padded to the
    /// alignment except the last when `padLast` is false.
    public static func file(version: UInt32 = 3, metadata: [[UInt8]] = [], tensors: [Tensor] = [],
                            tensorCount: UInt64? = nil, kvCount: UInt64? = nil, alignment: Int = 32,
                            padLast: Bool = true, padEmptyHeader: Bool = false) -> [UInt8] {
        var out = header(version: version, tensorCount: tensorCount ?? UInt64(tensors.count), kvCount: kvCount ?? UInt64(metadata.count))
        for record in metadata { out += record }
        var offset = 0
        for t in tensors {
            out += tensorInfo(t.name, ne: t.ne, type: t.type, offset: t.offset ?? UInt64(offset))
            offset = alignUp(offset + t.data.count, alignment)
        }
        if !tensors.isEmpty || padEmptyHeader { out += zeros(alignUp(out.count, alignment) - out.count) }
        for (i, t) in tensors.enumerated() {
            out += t.data
            if padLast || i + 1 < tensors.count { out += zeros(alignUp(t.data.count, alignment) - t.data.count) }
        }
        return out
    }

    /// A small valid file: `general.architecture = "llama"`, a string array, a u32, then tensors
    /// `a` F32 ne [3, 2] (24 bytes, padded to 32) and `b` F32 ne [5] (20 bytes, padded to 32).
    public static func valid() -> [UInt8] {
        file(metadata: [kv("general.architecture", .string("llama")),
                        kv("tokenizer.tokens", .array(elementType: .string, values: [.string("hello"), .string("world")])),
                        kv("llama.block_count", .uint32(2))],
             tensors: [.f32("a", [1, 2, 3, 4, 5, 6], ne: [3, 2]), .f32("b", [-1, -2, -3, -4, -5])])
    }

    /// Validates `bytes` as a whole GGUF file held in memory; `file` names it in errors.
    public static func parse(_ bytes: [UInt8], file: String = "memory.gguf") throws(GGUFError) -> GGUFHeader {
        do {
            return try bytes.withUnsafeBytes { try GGUFHeader(fileBytes: $0, file: file) }
        } catch let error as GGUFError {
            throw error
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }

    /// `count` zero bytes.
    public static func zeros(_ count: Int) -> [UInt8] { [UInt8](repeating: 0, count: count) }

    /// `x` rounded up to a multiple of `alignment`.
    public static func alignUp(_ x: Int, _ alignment: Int) -> Int { (x + alignment - 1) / alignment * alignment }

    private static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
}
