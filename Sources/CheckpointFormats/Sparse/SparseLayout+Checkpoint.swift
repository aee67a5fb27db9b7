import TensorCore

extension SparseLayout {
    /// The checkpoint with every dense entry marked sparse replaced, in place, by its compact parts
    /// when they are smaller than the dense tensor (`storage(for:pattern:)`), and the
    /// `modelpress.sparsity` record set (only when some tensor is stored compactly). Other entries,
    /// quantized ones included, pass through. Throws `SparseLayoutError.unstorable`, naming `file`,
    /// when a part's name is taken by another tensor or part.
    public static func expand(_ checkpoint: Checkpoint, file: String) throws -> Checkpoint {
        var expansion = Expansion(names: checkpoint.entries.map(\.name), file: file)
        let entries = try checkpoint.entries.enumerated().flatMap { try expansion.add($0.element, position: $0.offset) }
        return try Checkpoint(entries: entries, metadata: expansion.metadata(checkpoint.metadata))
    }

    /// `expand` one entry at a time, in any order (for writers that stream): `add` returns an entry
    /// as stored, `metadata` the metadata with the record of every entry stored compactly so far, in
    /// position order.
    public struct Expansion {
        private var taken: Set<[UInt8]>
        private let file: String
        private var record: [(position: Int, key: String, value: JSONValue)] = []

        /// `names`: every tensor the file will hold besides the parts (a part may not take one).
        public init(names: [String], file: String) {
            taken = Set(names.map { Array($0.utf8) })
            self.file = file
        }

        /// The entry as stored: its compact parts when it is marked sparse and they are smaller.
        /// `position`: its place in the checkpoint.
        public mutating func add(_ entry: TensorEntry, position: Int) throws -> [TensorEntry] {
            guard case .dense(let tensor) = entry.payload, let mark = entry.sparsity else { return [entry] }
            // A pattern the reader could not parse back is stored and recorded as unstructured.
            let pattern = SparsityPattern(mark.description) == mark ? mark : .unstructured
            let storage = storage(for: tensor, pattern: pattern)
            guard let format = storage.formatName else { return [entry] }
            var parts: [TensorEntry] = []
            for part in try encode(name: entry.name, tensor, storage: storage) {
                guard taken.insert(Array(part.name.utf8)).inserted else {
                    throw SparseLayoutError.unstorable(file: file, tensor: entry.name, reason: "its part '\(part.name)' would take the name of another tensor")
                }
                parts.append(TensorEntry(name: part.name, tensor: part.tensor))
            }
            record.append((position, entry.name, .object([("format", .string(format)), ("pattern", .string(pattern.description))])))
            return parts
        }

        /// `metadata` without a stale record, with this expansion's record (if any) at the end.
        public func metadata(_ metadata: [MetadataEntry]) -> [MetadataEntry] {
            CompressedTensorsLayout.metadata(metadata, key: metadataKey, record: record)
        }
    }

    /// The checkpoint with the parts of every tensor recorded under `modelpress.sparsity` put back
    /// together as a dense entry (at the position of its first part, marked with the recorded
    /// pattern) and the record removed. Groups of compressed-tensors `sparse-bitmask` parts
    /// `<p>.shape`, `<p>.compressed`, `<p>.bitmask`, `<p>.row_offsets` that no record claims are read
    /// too, as the unstructured tensor `<p>.weight` (`<p>` itself when it already ends in `.weight`).
    /// Throws `SparseLayoutError.malformed`, naming `file` and the tensor, when the record or a part
    /// is wrong.
    public static func collapse(_ checkpoint: Checkpoint, file: String) throws(SparseLayoutError) -> Checkpoint {
        do { return try collapse(checkpoint, file: file, visit: nil) } catch let error as SparseLayoutError { throw error } catch {
            preconditionFailure("unexpected \(error)")
        }
    }

    /// `collapse`, calling `visit` with each dense tensor as soon as it is put back together; what it
    /// returns is what the checkpoint keeps in its place (`CheckpointReader.DecodedTensorVisitor`).
    public static func collapse(_ checkpoint: Checkpoint, file: String, visit: CheckpointReader.DecodedTensorVisitor?) throws -> Checkpoint {
        let text = checkpoint.metadataValue(metadataKey)?.description
        let foreign = foreignBitmaskPrefixes(in: checkpoint.entries.map(\.name))
        guard text != nil || !foreign.isEmpty else { return checkpoint }
        var records: [Record] = []
        if let text { records = try parseRecords(text, file: file) }

        var position: [[UInt8]: Int] = [:]
        for (i, e) in checkpoint.entries.enumerated() { position[Array(e.name.utf8)] = i }
        var owner: [[UInt8]: String] = [:]            // part name -> the sparse tensor it belongs to
        var rebuilt: [Int: TensorEntry] = [:]          // position of the first part -> the dense entry
        var produced = Set<[UInt8]>()

        func rebuild(_ name: String, pattern: SparsityPattern, kinds: [Part.Kind],
                     decode: ([Part.Kind: StoredPart]) throws(Problem) -> DenseTensor) throws {
            func fail(_ reason: String) -> SparseLayoutError { .malformed(file: file, tensor: name, reason: reason) }
            guard position[Array(name.utf8)] == nil else { throw fail("the file also stores a tensor of that name") }
            guard produced.insert(Array(name.utf8)).inserted else { throw fail("recorded twice") }
            var parts: [Part.Kind: StoredPart] = [:]
            var first = Int.max
            for kind in kinds {
                let partName = partName(name, kind)
                guard let i = position[Array(partName.utf8)] else { throw fail("missing part '\(partName)'") }
                if let other = owner[Array(partName.utf8)] { throw fail("part '\(partName)' also belongs to '\(other)'") }
                guard case .dense(let t) = checkpoint.entries[i].payload else { throw fail("part '\(partName)' is not a plain tensor") }
                owner[Array(partName.utf8)] = name
                parts[kind] = (partName, t)
                first = min(first, i)
            }
            let entry: TensorEntry
            do { entry = TensorEntry(name: name, payload: .dense(try decode(parts)), sparsity: pattern) } catch { throw fail(error.reason) }
            parts.values.forEach { $0.tensor.storage.releaseResidentPages() }
            rebuilt[first] = try visit?(entry) ?? entry
        }

        for r in records {
            switch r.storage {
            case .bitmask:
                try rebuild(r.name, pattern: r.pattern, kinds: [.shape, .compressed, .bitmask, .rowOffsets]) { (p) throws(Problem) in
                    try decodeBitmask(shape: p[.shape]!, compressed: p[.compressed]!, bitmask: p[.bitmask]!, rowOffsets: p[.rowOffsets]!)
                }
            case .nOfM(let n, let m):
                try rebuild(r.name, pattern: r.pattern, kinds: [.shape, .compressed, .indices]) { (p) throws(Problem) in
                    try decodeNOfM(kept: n, group: m, shape: p[.shape]!, compressed: p[.compressed]!, indices: p[.indices]!)
                }
            case .dense:
                preconditionFailure("records are never dense")
            }
        }
        for prefix in foreign {
            let kinds: [Part.Kind] = [.shape, .compressed, .bitmask, .rowOffsets]
            guard kinds.allSatisfy({ owner[Array((prefix + "." + $0.rawValue).utf8)] == nil }) else { continue }
            let name = prefix.hasSuffix(".weight") ? prefix : prefix + ".weight"
            try rebuild(name, pattern: .unstructured, kinds: kinds) { (p) throws(Problem) in
                try decodeBitmask(shape: p[.shape]!, compressed: p[.compressed]!, bitmask: p[.bitmask]!, rowOffsets: p[.rowOffsets]!)
            }
        }

        var entries: [TensorEntry] = []
        for (i, entry) in checkpoint.entries.enumerated() {
            if let dense = rebuilt[i] { entries.append(dense) } else if owner[Array(entry.name.utf8)] == nil { entries.append(entry) }
        }
        do { return try Checkpoint(entries: entries, metadata: checkpoint.metadata.filter { $0.key != metadataKey }) } catch {
            guard let error = error as? CheckpointError, case .duplicateTensor(let n) = error else { preconditionFailure("unexpected \(error)") }
            throw SparseLayoutError.malformed(file: file, tensor: n, reason: "two tensors of that name after putting the sparse tensors back together")
        }
    }

    /// The prefixes `<p>` for which `names` holds all four compressed-tensors `sparse-bitmask` parts.
    public static func foreignBitmaskPrefixes(in names: [String]) -> [String] {
        let all = Set(names.map { Array($0.utf8) })
        let suffix = "." + Part.Kind.bitmask.rawValue
        return names.filter { $0.hasSuffix(suffix) }.map { String($0.dropLast(suffix.count)) }.filter { prefix in
            [Part.Kind.shape, .compressed, .rowOffsets].allSatisfy { all.contains(Array((prefix + "." + $0.rawValue).utf8)) }
        }
    }

    /// True when a safetensors file with these metadata keys and tensor names holds compact sparse tensors.
    public static func storesCompactTensors(metadataKeys: [String], tensorNames: [String]) -> Bool {
        metadataKeys.contains(metadataKey) || !foreignBitmaskPrefixes(in: tensorNames).isEmpty
    }

    /// One member of the `modelpress.sparsity` record.
    struct Record {
        let name: String
        /// `.bitmask` (count unknown until read) or `.nOfM`.
        let storage: Storage
        let pattern: SparsityPattern
    }

    /// The members of the record `text`, each checked.
    static func parseRecords(_ text: String, file: String) throws(SparseLayoutError) -> [Record] {
        func fail(_ tensor: String, _ reason: String) -> SparseLayoutError { .malformed(file: file, tensor: tensor, reason: reason) }
        let json: JSONValue
        do { json = try JSONParser.parse(Array(text.utf8)) } catch { throw fail(metadataKey, "invalid JSON: \(error)") }
        guard let members = json.objectMembers else { throw fail(metadataKey, "the record is \(json.kindName), expected an object") }
        var records: [Record] = []
        for (name, spec) in members {
            guard spec.objectMembers != nil else { throw fail(name, "its record is \(spec.kindName), expected an object") }
            func string(_ key: String) throws(SparseLayoutError) -> String {
                guard let value = spec[key] else { throw fail(name, "its record has no \(key)") }
                guard let s = value.stringValue else { throw fail(name, "\(key) is \(value.kindName), expected a string") }
                return s
            }
            let format = try string("format"), patternText = try string("pattern")
            guard let pattern = SparsityPattern(patternText) else {
                throw fail(name, "pattern '\(patternText)' is neither 'unstructured' nor N:M with 1 ≤ N < M ≤ 64")
            }
            let storage: Storage
            switch format {
            case bitmaskFormat: storage = .bitmask(nonZeroCount: 0)
            case nOfMFormat:
                guard case .nOfM(let n, let m) = pattern else { throw fail(name, "format \(nOfMFormat) needs an N:M pattern, not '\(patternText)'") }
                storage = .nOfM(kept: n, group: m)
            default: throw fail(name, "unknown format '\(format)'")
            }
            records.append(Record(name: name, storage: storage, pattern: pattern))
        }
        return records
    }
}
