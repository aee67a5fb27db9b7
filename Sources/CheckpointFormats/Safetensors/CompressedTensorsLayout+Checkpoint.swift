import TensorCore

extension CompressedTensorsLayout {
    /// The checkpoint with every quantized tensor replaced by its stored parts, in place, and the
    /// scheme record added to the metadata. Dense tensors pass through.
    public static func expand(_ checkpoint: Checkpoint) throws -> Checkpoint {
        var expansion = Expansion()
        let entries = try checkpoint.entries.enumerated().flatMap { try expansion.add($0.element, position: $0.offset) }
        return try Checkpoint(entries: entries, metadata: expansion.metadata(checkpoint.metadata))
    }

    /// `expand` one entry at a time, in any order (for writers that stream): `add` returns an
    /// entry's stored parts, `metadata` the metadata with the record of every quantized entry added
    /// so far, in position order.
    public struct Expansion {
        private var record: [(position: Int, key: String, value: JSONValue)] = []

        public init() {}

        /// The entry as stored: itself when dense, else its parts. `position`: its place in the checkpoint.
        public mutating func add(_ entry: TensorEntry, position: Int) throws -> [TensorEntry] {
            switch entry.payload {
            case .dense: return [entry]
            case .shared: throw CompressedTensorsError.unsupported(tensor: entry.name, what: "shared tensors outside SharedTensorLayout")
            case .ggml(let t): throw CompressedTensorsError.unsupported(tensor: entry.name, what: "ggml \(t.typeName) tensors")
            case .quantized(let q):
                let parts = try encode(name: entry.name, q).map { TensorEntry(name: $0.name, tensor: $0.tensor) }
                let scheme: String = switch q.scheme {
                case .integer: "int"
                case .float8(let kind): "fp8_" + kind.rawValue
                case .codebook: "nf4"
                }
                var fields: [(key: String, value: JSONValue)] = [("scheme", .string(scheme)), ("bits", .integer(q.bits)),
                                                                 ("symmetric", .bool(q.symmetric)), ("granularity", .string(q.granularity.description))]
                if q.columnBits != nil { fields.append(("format", .string(MixedWidthParts.formatName))) }
                record.append((position, entry.name, .object(fields)))
                return parts
            }
        }

        /// `metadata` without a stale record, with this expansion's record (if any) at the end.
        public func metadata(_ metadata: [MetadataEntry]) -> [MetadataEntry] {
            CompressedTensorsLayout.metadata(metadata, key: metadataKey, record: record)
        }
    }

    /// `metadata` without `key`, then `key` set to the JSON object of `record`'s members in position
    /// order when there are any (the record of the layouts that keep one member per stored tensor).
    static func metadata(_ metadata: [MetadataEntry], key: String, record: [(position: Int, key: String, value: JSONValue)]) -> [MetadataEntry] {
        var metadata = metadata.filter { $0.key != key }
        let members = record.sorted { $0.position < $1.position }.map { (key: $0.key, value: $0.value) }
        if !members.isEmpty { metadata.append(MetadataEntry(key: key, value: .string(JSONWriter.compact(.object(members))))) }
        return metadata
    }

    /// The checkpoint with the parts recorded under `modelpress.quantization` put back together as
    /// quantized tensors (at the position of their first part), and likewise every bitsandbytes NF4
    /// weight (found by its `quant_state` part, so files written by bitsandbytes read too). Throws
    /// when the parts do not fit.
    /// `visit` (optional) is called with each quantized tensor as soon as it is put back together
    /// and returns what the checkpoint keeps in its place (`CheckpointReader.DecodedTensorVisitor`).
    public static func collapse(_ checkpoint: Checkpoint, file: String, visit: CheckpointReader.DecodedTensorVisitor? = nil) throws -> Checkpoint {
        let foreignNF4 = BitsAndBytesLayout.weights(in: checkpoint.entries.map(\.name))
        let text = checkpoint.metadataValue(metadataKey)?.description
        if text == nil && foreignNF4.isEmpty { return checkpoint }
        func fail(_ tensor: String, _ reason: String) -> CompressedTensorsError { .malformed(tensor: tensor, reason: "\(file): \(reason)") }
        var records: [(key: String, value: JSONValue)] = []
        if let text {
            let json: JSONValue
            do { json = try JSONParser.parse(Array(text.utf8)) } catch { throw fail(metadataKey, "invalid JSON: \(error)") }
            guard let members = json.objectMembers else { throw fail(metadataKey, "not an object") }
            records = members
        }
        for name in foreignNF4 where !records.contains(where: { $0.key == name }) {
            records.append((name, .object([("scheme", .string("nf4")), ("bits", .integer(4)), ("symmetric", .bool(true)),
                                           ("granularity", .string("group:64"))])))
        }
        var replacement: [String: TensorEntry] = [:]   // first part name -> the rebuilt tensor (as `visit` leaves it)
        func rebuilt(_ name: String, _ q: QuantizedTensor) throws -> TensorEntry {
            let entry = TensorEntry(name: name, payload: .quantized(q))
            return try visit?(entry) ?? entry
        }
        var consumed = Set<String>()
        /// The stored tensor `part` of the quantized tensor `name` (marked as used), nil when there is none.
        func lookup(_ part: String, of name: String) throws -> DenseTensor? {
            guard let entry = checkpoint[part] else { return nil }
            guard case .dense(let t) = entry.payload else { throw fail(name, "part '\(part)' is not a plain tensor") }
            consumed.insert(part)
            parts.append(t)
            return t
        }
        var parts: [DenseTensor] = []   // the stored parts of the record being read (their pages go back once it is decoded)
        for (name, spec) in records {
            defer {
                parts.forEach { $0.storage.releaseResidentPages() }
                parts.removeAll()
            }
            if let format = spec["format"] {
                guard let text = format.stringValue else { throw fail(name, "format is \(format.kindName), expected a string") }
                guard text == MixedWidthParts.formatName else { throw fail(name, "unknown format '\(text)'") }
                let firstPart = module(of: name) + ".weight_packed"
                replacement[firstPart] = try rebuilt(name, decodeMixedWidths(name: name, spec: spec, file: file) { try lookup($0, of: name) })
                consumed.insert(firstPart)
                continue
            }
            guard let scheme = spec["scheme"]?.stringValue, let bits = spec["bits"]?.nonNegativeInt, (2...8).contains(bits),
                  case .bool(let symmetric)? = spec["symmetric"], let granularityText = spec["granularity"]?.stringValue,
                  let granularity = QuantizedTensor.Granularity(granularityText) else { throw fail(name, "malformed scheme record") }
            let module = module(of: name)
            func dense(_ part: String) throws -> DenseTensor {
                guard let entry = checkpoint[part], case .dense(let t) = entry.payload else { throw fail(name, "missing part '\(part)'") }
                consumed.insert(part)
                parts.append(t)
                return t
            }
            let quantized: QuantizedTensor
            let firstPart: String
            if scheme.hasPrefix("fp8_") {
                guard let kind = FP8Format.Kind(rawValue: String(scheme.dropFirst(4))) else { throw fail(name, "unknown scheme '\(scheme)'") }
                let codes = try dense(name), scales = try dense(module + ".weight_scale").floats()
                guard codes.dtype == kind.dtype else { throw fail(name, "codes are \(codes.dtype), expected \(kind.dtype)") }
                let expected = granularity == .tensor ? 1 : codes.shape.rowCount
                guard scales.count == expected else { throw fail(name, "\(scales.count) scales, expected \(expected)") }
                quantized = QuantizedTensor(shape: codes.shape, scheme: .float8(kind), bits: 8, symmetric: true, granularity: granularity,
                                            codes: codes.storage.array, scales: scales, zeroPoints: [Int32](repeating: 0, count: expected))
                firstPart = name
            } else if scheme == "int" {
                let shape = try storedShape(try dense(module + ".weight_shape")) { fail(name, $0) }
                let rows = max(shape.rowCount, 1), columns = shape.columnCount
                let groups: Int
                switch granularity {
                case .tensor: groups = 1
                case .channel: groups = rows
                case .group(let n):
                    guard n > 0, columns % n == 0 else { throw fail(name, "group size \(n) does not divide rows of \(columns)") }
                    groups = rows * (columns / n)
                }
                let packed = try dense(module + ".weight_packed")
                let perWord = 32 / bits, wordsPerRow = (columns + perWord - 1) / perWord
                guard packed.dtype == .i32, packed.elementCount == rows * wordsPerRow else { throw fail(name, "weight_packed has the wrong shape or dtype") }
                let scales = try dense(module + ".weight_scale").floats()
                guard scales.count == groups else { throw fail(name, "\(scales.count) scales, expected \(groups)") }
                let codes = unpackCodes(packed, rows: rows, columns: columns, bits: bits)
                var zeros = [Int32](repeating: Int32(1 << (bits - 1)), count: groups)
                if !symmetric {
                    let zeroRows = granularity == .tensor ? 1 : rows
                    let perRow = groups / zeroRows
                    let zp = try dense(module + ".weight_zero_point")
                    let packedRows = (zeroRows + perWord - 1) / perWord
                    guard zp.dtype == .i32, zp.elementCount == packedRows * perRow else { throw fail(name, "weight_zero_point has the wrong shape or dtype") }
                    let w = words(zp)
                    let transposed = (0..<perRow).flatMap { g in (0..<packedRows).map { w[$0 * perRow + g] } }
                    let unpackedT = unpackWords(transposed, rows: perRow, columns: zeroRows, bits: bits)
                    zeros = (0..<zeroRows).flatMap { r in (0..<perRow).map { Int32(unpackedT[$0 * zeroRows + r]) } }
                }
                quantized = QuantizedTensor(shape: shape, scheme: .integer, bits: bits, symmetric: symmetric, granularity: granularity,
                                            codes: codes, scales: scales, zeroPoints: zeros)
                firstPart = module + ".weight_packed"
            } else if scheme == "nf4" {
                let decoded = try BitsAndBytesLayout.decode(name: name, file: file) { try lookup($0, of: name) }
                guard let decoded else { throw fail(name, "missing part '\(name + BitsAndBytesLayout.stateSuffix)'") }
                quantized = decoded
                firstPart = name
            } else {
                throw fail(name, "unknown scheme '\(scheme)'")
            }
            replacement[firstPart] = try rebuilt(name, quantized)
            consumed.insert(firstPart)
        }
        var entries: [TensorEntry] = []
        for entry in checkpoint.entries {
            if let rebuilt = replacement[entry.name] { entries.append(rebuilt); continue }
            if consumed.contains(entry.name) { continue }
            entries.append(entry)
        }
        return try Checkpoint(entries: entries, metadata: checkpoint.metadata.filter { $0.key != metadataKey })
    }

    static func words(_ t: DenseTensor) -> [UInt32] {
        t.storage.withUnsafeBytes { raw in (0..<t.elementCount).map { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)) } }
    }
}
