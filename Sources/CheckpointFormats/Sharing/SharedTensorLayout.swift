import TensorCore

/// How shared tensors (`share.rps`) are stored, in safetensors and GGUF alike: only the slot array,
/// the scales, the seed and the map's parameters, never the expanded weights.
///
/// - the slot array `z` of each sharing step as a plain F32 tensor `<array>.slots` `[m]`, at the
///   position of the first tensor that shares it;
/// - a metadata entry `modelpress.rps` (a JSON string, so it fits safetensors' string map and a
///   GGUF string) describing every array:
///   `{"<array>": {"spec": "rps-randomfold-splitmix64-v1", "seed": "<decimal u64>", "m": m,
///   "chunk": C, "n": n, "tensors": [{"name", "shape", "offset", "scale", "position"}, ...]}}`.
///   `offset` is the tensor's first global index, `scale` its λ (shortest decimal that reads back
///   as the same float), `position` its index in the checkpoint's tensor order, so reading puts it
///   back where it was.
public enum SharedTensorLayout {
    public static let metadataKey = "modelpress.rps"
    /// The largest `n / m` a record may claim (the largest ratio `share.rps` takes): this bounds how
    /// many weights a file can make a reader expand per stored slot.
    public static let maximumRatio = 1_000_000

    /// The checkpoint with every shared tensor replaced by its array's slots (once per array) and the
    /// record added to the metadata. Other tensors pass through.
    public static func expand(_ checkpoint: Checkpoint) throws -> Checkpoint {
        var expansion = Expansion(names: checkpoint.entries.map(\.name))
        var stored = try checkpoint.entries.enumerated().map { try expansion.add($0.element, position: $0.offset) }
        for (position, slots) in try expansion.slotEntries() { stored[position] = [slots] }
        return try Checkpoint(entries: stored.flatMap { $0 }, metadata: expansion.metadata(checkpoint.metadata))
    }

    /// `expand` one entry at a time, in any order (for writers that stream): `add` returns an
    /// entry as stored (nothing for a shared tensor), `slotEntries` each array's slots with the
    /// position they take (that of the array's first tensor), `metadata` the metadata with the
    /// record of the arrays added so far (arrays and their tensors in position order).
    public struct Expansion {
        private let names: Set<String>
        private var arrays: [(name: String, first: SharedTensor, tensors: [(position: Int, record: JSONValue)])] = []

        /// `names`: every tensor of the checkpoint (a slot array may not take one).
        public init(names: [String]) {
            self.names = Set(names)
        }

        /// The entry as stored; `position` is its index in the checkpoint's tensor order.
        public mutating func add(_ entry: TensorEntry, position: Int) throws -> [TensorEntry] {
            guard case .shared(let t) = entry.payload else { return [entry] }
            guard t.scale.isFinite else { throw SharedTensorLayoutError.unstorable(tensor: entry.name, reason: "its scale \(t.scale) is not finite") }
            let record: JSONValue = .object([("name", .string(entry.name)), ("shape", .array(t.shape.dimensions.map { .integer($0) })),
                                             ("offset", .integer(t.offset)), ("scale", .number("\(t.scale)")), ("position", .integer(position))])
            if let k = arrays.firstIndex(where: { $0.name == t.arrayName }) {
                let first = arrays[k].first
                guard first.map == t.map, first.slots == t.slots, first.sharedElementCount == t.sharedElementCount else {
                    throw SharedTensorLayoutError.unstorable(tensor: entry.name, reason: "it claims array '\(t.arrayName)' with a different map or slots")
                }
                arrays[k].tensors.append((position, record))
                return []
            }
            let slotsName = t.arrayName + ".slots"
            guard !names.contains(slotsName) else { throw SharedTensorLayoutError.unstorable(tensor: entry.name, reason: "its slot array's name '\(slotsName)' is taken") }
            if let bad = t.slots.firstIndex(where: { !$0.isFinite }) {
                throw SharedTensorLayoutError.unstorable(tensor: entry.name, reason: "slot \(bad) of array '\(t.arrayName)' is not finite")
            }
            arrays.append((t.arrayName, t, [(position, record)]))
            return []
        }

        /// Each array's slot tensor `<array>.slots` (F32 `[m]`) and the position it takes.
        public func slotEntries() throws -> [(position: Int, entry: TensorEntry)] {
            try arrays.map { array in
                (array.tensors.map(\.position).min()!,
                 TensorEntry(name: array.name + ".slots", tensor: try DenseTensor(floats: array.first.slots, shape: Shape([array.first.slots.count]))))
            }
        }

        /// `metadata` unchanged when no shared tensor was added, else without a stale record and with
        /// this expansion's record at the end.
        public func metadata(_ metadata: [MetadataEntry]) -> [MetadataEntry] {
            guard !arrays.isEmpty else { return metadata }
            let ordered = arrays.map { ($0.name, $0.first, $0.tensors.sorted { $0.position < $1.position }) }.sorted { $0.2[0].position < $1.2[0].position }
            let record: JSONValue = .object(ordered.map { name, first, tensors in
                (name, .object([("spec", .string(RandomFoldMap.specName)), ("seed", .string(String(first.map.seed))),
                                ("m", .integer(first.map.slotCount)), ("chunk", .integer(first.map.chunk)),
                                ("n", .integer(first.sharedElementCount)), ("tensors", .array(tensors.map(\.record)))]))
            })
            return metadata.filter { $0.key != metadataKey } + [MetadataEntry(key: metadataKey, value: .string(JSONWriter.compact(record)))]
        }
    }

    /// The checkpoint with the arrays recorded under `modelpress.rps` turned back into shared tensors
    /// at their recorded positions (the slot tensors and the record removed). Throws, naming the file
    /// and the tensor, when the record or a slot array is malformed: among other checks, an array
    /// recorded twice, `n > maximumRatio · m`, a tensor name or a position used twice (a slot
    /// array's name included), or non-empty tensors that overlap.
    public static func collapse(_ checkpoint: Checkpoint, file: String) throws -> Checkpoint {
        guard let value = checkpoint.metadataValue(metadataKey) else { return checkpoint }
        func fail(_ tensor: String, _ reason: String) -> SharedTensorLayoutError { .malformed(file: file, tensor: tensor, reason: reason) }
        if case .gguf(let v) = value, v.type != .string { throw fail(metadataKey, "not a string (found a GGUF \(v.type.name))") }
        let text = value.description
        let json: JSONValue
        do { json = try JSONParser.parse(Array(text.utf8)) } catch { throw fail(metadataKey, "invalid JSON: \(error)") }
        guard let arrays = json.objectMembers else { throw fail(metadataKey, "not an object") }
        var slotNames = Set<String>()
        var shared: [(position: Int, entry: TensorEntry)] = []
        var names = Set(checkpoint.entries.map(\.name))
        var arrayNames = Set<String>(), positions = Set<Int>()
        for (arrayName, value) in arrays {
            guard arrayNames.insert(arrayName).inserted else { throw fail(arrayName, "the array is recorded twice") }
            guard let fields = value.objectMembers else { throw fail(arrayName, "the array record is not an object") }
            func field(_ key: String) -> JSONValue? { fields.first { $0.key == key }?.value }
            guard field("spec")?.stringValue == RandomFoldMap.specName else {
                throw fail(arrayName, "unknown sharing spec '\(field("spec")?.stringValue ?? "none")' (this version reads \(RandomFoldMap.specName))")
            }
            guard let seedText = field("seed")?.stringValue, seedText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let seed = UInt64(seedText) else { throw fail(arrayName, "seed must be a decimal string of an unsigned 64-bit integer") }
            guard let m = field("m")?.nonNegativeInt, m >= 1, let chunk = field("chunk")?.nonNegativeInt, chunk >= 1,
                  let n = field("n")?.nonNegativeInt, n >= 1 else { throw fail(arrayName, "m, chunk and n must be positive integers") }
            guard case (let most, false) = m.multipliedReportingOverflow(by: maximumRatio), n <= most else {
                throw fail(arrayName, "n = \(n) is more than \(maximumRatio) times m = \(m)")
            }
            let slotsName = arrayName + ".slots"
            guard let slotsEntry = checkpoint[slotsName], case .dense(let slotsTensor) = slotsEntry.payload else { throw fail(arrayName, "its slot array '\(slotsName)' is missing") }
            guard slotsTensor.dtype == .f32, slotsTensor.shape.dimensions == [m] else { throw fail(slotsName, "must be F32 [\(m)], found \(slotsTensor.dtype) \(slotsTensor.shape)") }
            let slots = try slotsTensor.floats()
            if let bad = slots.firstIndex(where: { !$0.isFinite }) { throw fail(slotsName, "slot \(bad) is not finite") }
            slotNames.insert(slotsName)
            names.remove(slotsName)
            let map = RandomFoldMap(seed: seed, slotCount: m, chunk: chunk)
            guard let tensors = field("tensors")?.arrayElements, !tensors.isEmpty else { throw fail(arrayName, "no tensors") }
            var covered: [(Int, Int)] = []
            for record in tensors {
                guard let t = record.objectMembers else { throw fail(arrayName, "a tensor record is not an object") }
                func item(_ key: String) -> JSONValue? { t.first { $0.key == key }?.value }
                guard let name = item("name")?.stringValue else { throw fail(arrayName, "a tensor record has no name") }
                guard let dims = item("shape")?.arrayElements?.map(\.nonNegativeInt), !dims.contains(nil),
                      let shape = try? Shape(validating: dims.map { $0! }) else { throw fail(name, "bad shape") }
                guard let offset = item("offset")?.nonNegativeInt, offset <= n, shape.elementCount <= n - offset else {
                    throw fail(name, "offset and size do not fit the array's \(n) weights")
                }
                guard case .number(let scaleText)? = item("scale"), let scale = Float(scaleText), scale.isFinite else { throw fail(name, "scale must be a finite number") }
                guard let position = item("position")?.nonNegativeInt else { throw fail(name, "position must be a non-negative integer") }
                guard positions.insert(position).inserted else { throw fail(name, "position \(position) is used twice") }
                guard !slotNames.contains(name), names.insert(name).inserted else { throw fail(name, "the name is used twice") }
                covered.append((offset, offset + shape.elementCount))
                let tensor = SharedTensor(shape: shape, arrayName: arrayName, map: map, offset: offset, scale: scale, slots: slots, sharedElementCount: n)
                shared.append((position, TensorEntry(name: name, payload: .shared(tensor))))
            }
            // Empty tensors cover nothing (they may sit at any offset, even inside another's range).
            covered = covered.filter { $0.0 < $0.1 }.sorted { $0.0 < $1.0 }
            for (a, b) in zip(covered, covered.dropFirst()) where b.0 < a.1 { throw fail(arrayName, "tensors overlap in the global index space") }
        }
        var entries = checkpoint.entries.filter { !slotNames.contains($0.name) }
        for (position, entry) in shared.sorted(by: { $0.position < $1.position }) {
            guard position <= entries.count else { throw fail(entry.name, "position \(position) is past the end of the checkpoint") }
            entries.insert(entry, at: position)
        }
        return try Checkpoint(entries: entries, metadata: checkpoint.metadata.filter { $0.key != metadataKey })
    }
}

/// Shared tensors that cannot be stored, or a malformed sharing record (exit 65).
public enum SharedTensorLayoutError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    case unstorable(tensor: String, reason: String)
    case malformed(file: String, tensor: String, reason: String)

    public var description: String {
        switch self {
        case .unstorable(let t, let r): "tensor '\(t)' cannot be stored: \(r)"
        case .malformed(let f, let t, let r): "\(f): shared tensor record '\(t)': \(r)"
        }
    }
}

extension TensorEntry {
    /// A shared tensor as a dense F32 tensor (for writers and conversions that need plain values);
    /// other entries unchanged.
    public func expandingShared() throws -> TensorEntry {
        guard case .shared(let t) = payload else { return self }
        return TensorEntry(name: name, tensor: try DenseTensor(floats: t.expanded(), shape: t.shape))
    }
}
