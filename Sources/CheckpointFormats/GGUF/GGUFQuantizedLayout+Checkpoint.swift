import TensorCore

extension GGUFQuantizedLayout {
    /// The checkpoint with every quantized tensor replaced by its stored parts, in place, and the
    /// `modelpress.quantization.<name>.*` keys appended to the metadata (replacing any earlier keys
    /// for those names). Dense and ggml tensors pass through; without quantized tensors the
    /// checkpoint is returned as it is.
    public static func expand(_ checkpoint: Checkpoint) throws -> Checkpoint {
        guard checkpoint.entries.contains(where: \.isQuantized) else { return checkpoint }
        let (entries, metadata) = try expand(entries: checkpoint.entries, metadata: checkpoint.metadata.map { ($0.key, $0.value.ggufValue) })
        return try Checkpoint(entries: entries, metadata: metadata.map { MetadataEntry(key: $0.key, value: .gguf($0.value)) })
    }

    /// `expand` over entries and GGUF-typed metadata, for writers that stream (the conversion).
    /// Throws `GGUFQuantizedLayoutError.unstorable` when a part's name is taken or too long for GGUF.
    public static func expand(entries: [TensorEntry], metadata: [(key: String, value: GGUFValue)]) throws
        -> (entries: [TensorEntry], metadata: [(key: String, value: GGUFValue)]) {
        var expansion = Expansion(names: entries.map(\.name))
        let outEntries = try entries.enumerated().flatMap { try expansion.add($0.element, position: $0.offset) }
        return (outEntries, expansion.metadata(metadata))
    }

    /// `expand` one entry at a time, in any order (for writers that stream): `add` returns an
    /// entry's stored parts, `metadata` the metadata with the keys of every quantized entry added so
    /// far, in position order.
    public struct Expansion {
        private var names: Set<[UInt8]>
        private var quantized = Set<[UInt8]>()
        private var added: [(position: Int, keys: [(key: String, value: GGUFValue)])] = []

        /// `names`: every tensor of the checkpoint (a part may not take one).
        public init(names: [String]) {
            self.names = Set(names.map { Array($0.utf8) })
        }

        /// The entry as stored: itself, or its parts when quantized. `position`: its place in the checkpoint.
        public mutating func add(_ entry: TensorEntry, position: Int) throws -> [TensorEntry] {
            guard case .quantized(let q) = entry.payload else { return [entry] }
            let parts = try encode(name: entry.name, q)
            for part in parts.dropFirst() {
                guard part.name.utf8.count < 64 else {
                    throw GGUFQuantizedLayoutError.unstorable(tensor: entry.name, reason: "the name of its part '\(part.name)' is longer than 63 bytes (GGUF limit)")
                }
                guard names.insert(Array(part.name.utf8)).inserted else {
                    throw GGUFQuantizedLayoutError.unstorable(tensor: entry.name, reason: "its part '\(part.name)' would take the name of another tensor")
                }
            }
            quantized.insert(Array(entry.name.utf8))
            added.append((position, GGUFQuantizedLayout.metadata(name: entry.name, q)))
            return parts.map { TensorEntry(name: $0.name, tensor: $0.tensor) }
        }

        /// `metadata` without stale keys of the quantized tensors, with the keys added so far.
        public func metadata(_ metadata: [(key: String, value: GGUFValue)]) -> [(key: String, value: GGUFValue)] {
            metadata.filter { entry in splitKey(entry.key).map { !quantized.contains(Array($0.name.utf8)) } ?? true }
                + added.sorted { $0.position < $1.position }.flatMap(\.keys)
        }
    }

    /// The checkpoint with the parts described by `modelpress.quantization.<name>.*` keys put back
    /// together as quantized tensors (at the position of their codes) and those keys removed.
    /// Throws `GGUFQuantizedLayoutError.malformed`, naming `file` and the tensor, when a key is unknown,
    /// missing or mistyped, or a part is missing, claimed twice, or has the wrong dtype or shape.
    /// `visit` (optional) is called with each quantized tensor as soon as it is put back together
    /// and returns what the checkpoint keeps in its place (`CheckpointReader.DecodedTensorVisitor`).
    public static func collapse(_ checkpoint: Checkpoint, file: String, visit: CheckpointReader.DecodedTensorVisitor? = nil) throws -> Checkpoint {
        guard checkpoint.metadata.contains(where: { $0.key.hasPrefix(keyPrefix) }) else { return checkpoint }
        var records: [(name: String, fields: [Field: GGUFValue])] = []
        var recordIndex: [[UInt8]: Int] = [:]
        for entry in checkpoint.metadata where entry.key.hasPrefix(keyPrefix) {
            guard let (name, fieldText) = splitKey(entry.key), let field = Field(rawValue: fieldText) else {
                let tensor = splitKey(entry.key)?.name ?? String(entry.key.dropFirst(keyPrefix.count))
                throw GGUFQuantizedLayoutError.malformed(file: file, tensor: tensor, reason: "unknown metadata key '\(entry.key)'")
            }
            let position = recordIndex[Array(name.utf8)] ?? records.count
            if position == records.count {
                recordIndex[Array(name.utf8)] = position
                records.append((name, [:]))
            }
            records[position].fields[field] = entry.value.ggufValue
        }
        var claimed = Set<[UInt8]>()
        var rebuilt: [[UInt8]: TensorEntry] = [:]
        for record in records {
            var reader = RecordReader(name: record.name, fields: record.fields, checkpoint: checkpoint, file: file, claimed: claimed)
            let entry = TensorEntry(name: record.name, payload: .quantized(try reader.tensor()))
            rebuilt[Array(record.name.utf8)] = try visit?(entry) ?? entry
            claimed = reader.claimed
        }
        var entries: [TensorEntry] = []
        for entry in checkpoint.entries {
            let name = Array(entry.name.utf8)
            if let tensor = rebuilt[name] { entries.append(tensor) }
            else if !claimed.contains(name) { entries.append(entry) }
        }
        return try Checkpoint(entries: entries, metadata: checkpoint.metadata.filter { !$0.key.hasPrefix(keyPrefix) })
    }

    /// `modelpress.quantization.<name>.<field>` split into name and field (at the last dot).
    static func splitKey(_ key: String) -> (name: String, field: String)? {
        guard key.hasPrefix(keyPrefix) else { return nil }
        let rest = key.dropFirst(keyPrefix.count)
        guard let dot = rest.lastIndex(of: "."), dot != rest.startIndex else { return nil }
        return (String(rest[..<dot]), String(rest[rest.index(after: dot)...]))
    }
}

extension TensorEntry {
    var isQuantized: Bool {
        if case .quantized = payload { return true }
        return false
    }

    /// Bytes of the payload as a file of `format` stores it (data only, headers excluded): a quantized
    /// tensor takes `GGUFQuantizedLayout.storedByteCount` in GGUF and `byteCount` (the
    /// compressed-tensors layout) elsewhere; a dense tensor marked sparse takes
    /// `SparseLayout.storedByteCount` (what the safetensors writer stores) outside GGUF, which always
    /// stores it dense; other payloads take `byteCount` everywhere.
    public func byteCount(in format: CheckpointFormat) -> Int {
        switch payload {
        case .quantized(let q) where format == .gguf: return GGUFQuantizedLayout.storedByteCount(q)
        case .dense(let t) where format != .gguf: return sparsity.map { SparseLayout.storedByteCount(t, pattern: $0) } ?? byteCount
        default: return byteCount
        }
    }
}

/// Rebuilds one quantized tensor from its metadata fields and stored parts, checking everything.
struct RecordReader {
    typealias Layout = GGUFQuantizedLayout
    let name: String
    let fields: [Layout.Field: GGUFValue]
    let checkpoint: Checkpoint
    let file: String
    /// Names of the tensors already taken by a quantized tensor (its codes and parts).
    var claimed: Set<[UInt8]>

    func fail(_ reason: String) -> GGUFQuantizedLayoutError { .malformed(file: file, tensor: name, reason: reason) }

    func value(_ field: Layout.Field) throws -> GGUFValue {
        guard let v = fields[field] else { throw fail("missing metadata key '\(Layout.key(name, field))'") }
        return v
    }

    func integer(_ field: Layout.Field, in range: ClosedRange<Int>) throws -> Int {
        let v = try value(field)
        guard let n = v.integerValue, range.contains(n) else {
            throw fail("'\(Layout.key(name, field))' is \(v.type.name) \(v), expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return n
    }

    func string(_ field: Layout.Field) throws -> String {
        let v = try value(field)
        guard case .string(let s) = v else { throw fail("'\(Layout.key(name, field))' is \(v.type.name), expected string") }
        return s
    }

    /// The dense tensor `partName`, claimed for this quantized tensor, with one of `dtypes` and `shape`.
    mutating func part(_ partName: String, _ dtypes: [DType], _ shape: Shape? = nil) throws -> DenseTensor {
        guard let entry = checkpoint[partName] else { throw fail("missing tensor '\(partName)'") }
        guard claimed.insert(Array(partName.utf8)).inserted else { throw fail("tensor '\(partName)' also belongs to another quantized tensor") }
        guard case .dense(let t) = entry.payload, dtypes.contains(t.dtype) else {
            throw fail("'\(partName)' is \(entry.encodingName), expected \(dtypes.map(\.rawValue).joined(separator: " or "))")
        }
        if let shape, t.shape != shape { throw fail("'\(partName)' has shape \(t.shape), expected \(shape)") }
        return t
    }

    mutating func tensor() throws -> QuantizedTensor {
        if fields[.format] != nil { return try mixedWidthTensor() }
        let schemeText = try string(.scheme)
        let bitsRange: ClosedRange<Int>
        var scheme: QuantizedTensor.Scheme
        switch schemeText {
        case "int": scheme = .integer; bitsRange = 2...8
        case "codebook": scheme = .codebook([]); bitsRange = 1...8
        default:
            guard schemeText.hasPrefix("fp8_"), let kind = FP8Format.Kind(rawValue: String(schemeText.dropFirst(4))) else {
                throw fail("unknown scheme '\(schemeText)'")
            }
            scheme = .float8(kind); bitsRange = 8...8
        }
        let bits = try integer(.bits, in: bitsRange)
        guard case .bool(let symmetric) = try value(.symmetric) else { throw fail("'\(Layout.key(name, .symmetric))' is not a bool") }
        let granularityText = try string(.granularity)
        guard let granularity = QuantizedTensor.Granularity(granularityText) else { throw fail("unknown granularity '\(granularityText)'") }
        let shape = try logicalShape()

        let codesTensor = try part(name, [.i8], Layout.packedShape(shape, bits: bits))
        guard let codes = codesTensor.storage.withUnsafeBytes({ Layout.unpack($0, shape: shape, bits: bits) }) else {
            throw fail("a code of '\(name)' does not fit in \(bits) bits")
        }

        let nested = try nestedScales(shape: shape, granularity: granularity)
        let scales: [Float]
        if let nested {
            scales = nested.scales()
        } else {
            let t = try part(Layout.partName(name, .scale), [.f16, .f32])
            try checkScaleShape(t.shape, partName: Layout.partName(name, .scale), shape: shape, granularity: granularity)
            scales = try t.floats()
        }
        let scaleShape = Layout.scaleShape(count: scales.count, shape: shape, granularity: granularity)

        var zeroPoints = [Int32](repeating: scheme == .integer && symmetric ? Int32(1 << (bits - 1)) : 0, count: scales.count)
        if scheme == .integer && !symmetric {
            zeroPoints = Layout.integers(try part(Layout.partName(name, .zeroPoint), [.i8, .i16, .i32], scaleShape))!
        }
        if case .codebook = scheme {
            let partName = Layout.partName(name, .codebook)
            let t = try part(partName, [.f32])
            guard t.shape.rank == 1, t.elementCount <= 256 else { throw fail("'\(partName)' has shape \(t.shape), expected [n] with n ≤ 256") }
            scheme = .codebook(try t.floats())
        }
        return QuantizedTensor(shape: shape, scheme: scheme, bits: bits, symmetric: symmetric, granularity: granularity,
                               codes: codes, scales: scales, zeroPoints: zeroPoints, nestedScales: nested)
    }

    /// The `shape` key: non-negative integers whose product fits in `Int`.
    func logicalShape() throws -> Shape {
        let v = try value(.shape)
        guard case .array(_, let values) = v else { throw fail("'\(Layout.key(name, .shape))' is \(v.type.name), expected an int64 array") }
        var dims: [Int] = []
        for element in values {
            guard let d = element.integerValue else { throw fail("'\(Layout.key(name, .shape))' holds \(element.type.name) values, expected integers") }
            dims.append(d)
        }
        do { return try Shape(validating: dims) } catch { throw fail("'\(Layout.key(name, .shape))' = \(dims) is not a valid shape") }
    }

    /// `count` scales must be what the granularity asks for (any count for an empty tensor) and stored as `scaleShape`.
    func checkScaleShape(_ stored: Shape, partName: String, shape: Shape, granularity: QuantizedTensor.Granularity) throws {
        let count = stored.elementCount
        let expected = Layout.expectedScaleCount(shape: shape, granularity: granularity)
        guard count == expected || shape.elementCount == 0 else { throw fail("'\(partName)' holds \(count) scales, expected \(expected)") }
        let expectedShape = Layout.scaleShape(count: count, shape: shape, granularity: granularity)
        guard stored == expectedShape else { throw fail("'\(partName)' has shape \(stored), expected \(expectedShape)") }
    }

    /// The double-quantized scales, when the record has the nested keys.
    mutating func nestedScales(shape: Shape, granularity: QuantizedTensor.Granularity) throws -> QuantizedTensor.NestedScales? {
        let hasBlock = fields[.nestedBlockSize] != nil, hasOffset = fields[.nestedOffset] != nil
        guard hasBlock || hasOffset else { return nil }
        let blockSize = try integer(.nestedBlockSize, in: 1...Int(UInt32.max))
        guard case .float32(let offset) = try value(.nestedOffset) else { throw fail("'\(Layout.key(name, .nestedOffset))' is not a float32") }
        let codesName = Layout.partName(name, .scaleCodes)
        let codes = try part(codesName, [.i8])
        try checkScaleShape(codes.shape, partName: codesName, shape: shape, granularity: granularity)
        let blocks = (codes.elementCount + blockSize - 1) / blockSize
        let second = try part(Layout.partName(name, .scaleScales), [.f32], Shape([blocks])).floats()
        let map = try part(Layout.partName(name, .scaleMap), [.f32], Shape([256])).floats()
        return QuantizedTensor.NestedScales(codes: codes.storage.array, secondLevelScales: second, offset: offset, blockSize: blockSize, map: map)
    }
}
