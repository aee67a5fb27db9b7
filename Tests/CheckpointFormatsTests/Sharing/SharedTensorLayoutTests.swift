import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// Shared tensors (`share.rps`) stored as `SharedTensorLayout` describes: round trips through
/// safetensors and GGUF files, the exact stored slot bytes and record text, one hostile record per
/// check of `collapse` (each with its exact error, in memory and from both formats), the errors of
/// `expand`, and a seeded mutation run over the record that must only ever read it or reject it.
@Suite("Shared tensor layout")
struct SharedTensorLayoutTests {
    static let key = SharedTensorLayout.metadataKey
    static let spec = RandomFoldMap.specName

    // MARK: samples

    /// `rps.3`: m = 10 slots (RANDOMFOLD, chunk = m), n = 20 weights: `a.weight` [3, 4] at offset 0
    /// (scale 0.5), `b.weight` [2, 4] at offset 12 (scale 2).
    static let slotsA: [Float] = [0.5, -1.25, 2, 0.75, -0.125, 3.5, -2, 1, 0.25, -0.5]
    static let mapA = RandomFoldMap(seed: 7, slotCount: 10)
    /// `rps.9`: m = 4, chunk 2, a seed above 2^63, n = 6: `c.weight` [6] at offset 0 (scale 0.25).
    static let slotsB: [Float] = [1, -2, 3, -4.5]
    static let mapB = RandomFoldMap(seed: 12_345_678_901_234_567_890, slotCount: 4, chunk: 2)

    static func a() -> SharedTensor {
        SharedTensor(shape: Shape([3, 4]), arrayName: "rps.3", map: mapA, offset: 0, scale: 0.5, slots: slotsA, sharedElementCount: 20)
    }
    static func b() -> SharedTensor {
        SharedTensor(shape: Shape([2, 4]), arrayName: "rps.3", map: mapA, offset: 12, scale: 2, slots: slotsA, sharedElementCount: 20)
    }
    static func c() -> SharedTensor {
        SharedTensor(shape: Shape([6]), arrayName: "rps.9", map: mapB, offset: 0, scale: 0.25, slots: slotsB, sharedElementCount: 6)
    }

    static func dense(_ name: String, _ values: [Float], dtype: DType = .f32) throws -> TensorEntry {
        TensorEntry(name: name, tensor: try DenseTensor(floats: values, shape: Shape([values.count]), dtype: dtype))
    }

    /// `norm`, `a.weight` (shared), `mid` (BF16), `b.weight` (shared), `tail`, with one other metadata key.
    static func oneArray() throws -> Checkpoint {
        try Checkpoint(entries: [try dense("norm", [1, 2, 3, 4]), TensorEntry(name: "a.weight", payload: .shared(a())),
                                 try dense("mid", [5, 6], dtype: .bf16), TensorEntry(name: "b.weight", payload: .shared(b())),
                                 try dense("tail", [7, 8, 9])],
                       metadata: [MetadataEntry(key: "format", value: .string("pt"))])
    }

    /// Two arrays from two steps, interleaved: `norm`, `a` (rps.3), `mid`, `c` (rps.9), `b` (rps.3), `tail`.
    static func twoArrays() throws -> Checkpoint {
        try Checkpoint(entries: [try dense("norm", [1, 2, 3, 4]), TensorEntry(name: "a.weight", payload: .shared(a())),
                                 try dense("mid", [5, 6], dtype: .bf16), TensorEntry(name: "c.weight", payload: .shared(c())),
                                 TensorEntry(name: "b.weight", payload: .shared(b())), try dense("tail", [7, 8, 9])],
                       metadata: [MetadataEntry(key: "format", value: .string("pt"))])
    }

    static let recordA = #"{"rps.3":{"spec":"rps-randomfold-splitmix64-v1","seed":"7","m":10,"chunk":10,"n":20,"tensors":["#
        + #"{"name":"a.weight","shape":[3,4],"offset":0,"scale":0.5,"position":1},"#
        + #"{"name":"b.weight","shape":[2,4],"offset":12,"scale":2.0,"position":3}]}}"#

    static let recordAB = #"{"rps.3":{"spec":"rps-randomfold-splitmix64-v1","seed":"7","m":10,"chunk":10,"n":20,"tensors":["#
        + #"{"name":"a.weight","shape":[3,4],"offset":0,"scale":0.5,"position":1},"#
        + #"{"name":"b.weight","shape":[2,4],"offset":12,"scale":2.0,"position":4}]},"#
        + #""rps.9":{"spec":"rps-randomfold-splitmix64-v1","seed":"12345678901234567890","m":4,"chunk":2,"n":6,"tensors":["#
        + #"{"name":"c.weight","shape":[6],"offset":0,"scale":0.25,"position":3}]}}"#

    enum Format: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case safetensors, gguf
        var testDescription: String { rawValue }

        func write(_ checkpoint: Checkpoint, in dir: TemporaryDirectory, name: String = "shared") throws -> String {
            let path = dir.url("\(name).\(rawValue)")
            switch self {
            case .safetensors: try SafetensorsWriter.write(checkpoint, to: path)
            case .gguf: try GGUFWriter.write(checkpoint, to: path)
            }
            return path
        }

        /// The file's tensors and metadata as stored (no layout collapsed).
        func readRaw(_ path: String) throws -> Checkpoint {
            switch self {
            case .safetensors: try SafetensorsReader.open(path: path)
            case .gguf: try GGUFReader.open(path: path)
            }
        }
    }

    static func shared(_ c: Checkpoint, _ name: String) throws -> SharedTensor {
        guard case .shared(let t)? = c[name]?.payload else { throw CheckpointExpectationError("tensor '\(name)' is not shared") }
        return t
    }

    /// Every entry of `back` equals the one of `original` (shared payloads exactly, dense ones byte for byte).
    static func expectSame(_ back: Checkpoint, _ original: Checkpoint, _ label: String) throws {
        #expect(back.entries.map(\.name) == original.entries.map(\.name), "\(label)")
        for entry in original.entries {
            switch entry.payload {
            case .shared(let t): #expect(try shared(back, entry.name) == t, "\(label): \(entry.name)")
            default: #expect(try denseTensor(back, entry.name) == denseTensor(original, entry.name), "\(label): \(entry.name)")
            }
        }
    }

    // MARK: round trips and stored bytes

    @Test("one array around dense tensors: stored as its slots and the record, read back in place", arguments: Format.allCases)
    func oneArrayRoundTrip(_ format: Format) throws {
        let dir = try TemporaryDirectory(prefix: "rps-layout")
        let original = try Self.oneArray()
        let path = try format.write(original, in: dir)

        let raw = try format.readRaw(path)
        #expect(raw.entries.map(\.name) == ["norm", "rps.3.slots", "mid", "tail"])
        let slots = try denseTensor(raw, "rps.3.slots")
        #expect(slots.dtype == .f32 && slots.shape == Shape([10]))
        #expect(slots.storage.array == Self.slotsA.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) })
        #expect(raw.metadataValue(Self.key)?.description == Self.recordA)
        if format == .gguf { #expect(raw.metadataValue(Self.key) == .gguf(.string(Self.recordA))) }

        let back = try CheckpointReader.open(path: path)
        try Self.expectSame(back, original, "\(format)")
        #expect(back["rps.3.slots"] == nil)
        #expect(back.metadataValue(Self.key) == nil)
        #expect(back.metadataValue("format")?.description == "pt")
        #expect(back.entries.map(\.encodingName) == ["F32", "rps 2.00x", "BF16", "rps 2.00x", "F32"])
        // Written again, the file is the same.
        let again = try format.write(back, in: dir, name: "again")
        #expect(try TemporaryDirectory.read(again) == TemporaryDirectory.read(path))
    }

    @Test("two arrays from two steps, interleaved: both records, both slot tensors, every position restored", arguments: Format.allCases)
    func twoArraysRoundTrip(_ format: Format) throws {
        let dir = try TemporaryDirectory(prefix: "rps-layout")
        let original = try Self.twoArrays()
        let path = try format.write(original, in: dir)
        let raw = try format.readRaw(path)
        #expect(raw.entries.map(\.name) == ["norm", "rps.3.slots", "mid", "rps.9.slots", "tail"])
        #expect(try denseTensor(raw, "rps.9.slots").floats() == Self.slotsB)
        #expect(raw.metadataValue(Self.key)?.description == Self.recordAB)

        let back = try CheckpointReader.open(path: path)
        try Self.expectSame(back, original, "\(format)")
        #expect(back.entries.allSatisfy { !$0.name.hasSuffix(".slots") })
        #expect(back.metadata.map(\.key).filter { $0 == Self.key }.isEmpty)
        #expect(try Self.shared(back, "c.weight").map == Self.mapB && Self.shared(back, "c.weight").encodingName == "rps 1.50x")
        // The two tensors of rps.3 share one slot array, and expand as the formula says.
        let t = try Self.shared(back, "b.weight")
        #expect(t.expanded() == (0..<8).map { j in 2 * Self.mapA.sign(12 + j) * Self.slotsA[Self.mapA.slot(12 + j)] })
    }

    @Test("expand writes the record exactly (in memory), replacing an older record; a checkpoint without shared tensors passes through")
    func recordText() throws {
        var original = try Self.oneArray()
        original.metadata.append(MetadataEntry(key: Self.key, value: .string("stale")))
        let expanded = try SharedTensorLayout.expand(original)
        #expect(expanded.metadata == [MetadataEntry(key: "format", value: .string("pt")), MetadataEntry(key: Self.key, value: .string(Self.recordA))])
        #expect(try denseTensor(expanded, "rps.3.slots").floats() == Self.slotsA)

        let plain = try Checkpoint(entries: [try Self.dense("x", [1])], metadata: [MetadataEntry(key: "k", value: .string("v"))])
        let same = try SharedTensorLayout.expand(plain)
        #expect(same.entries.map(\.name) == ["x"] && same.metadata == plain.metadata)
        #expect(try SharedTensorLayout.collapse(plain, file: "m").entries.map(\.name) == ["x"])
    }

    @Test("an empty shared tensor covers nothing: it may sit inside another tensor's range")
    func emptyTensor() throws {
        let empty = SharedTensor(shape: Shape([0, 4]), arrayName: "rps.3", map: Self.mapA, offset: 5, scale: 1, slots: Self.slotsA, sharedElementCount: 20)
        var entries = try Self.oneArray().entries
        entries.insert(TensorEntry(name: "e.weight", payload: .shared(empty)), at: 2)
        let original = try Checkpoint(entries: entries)
        let back = try SharedTensorLayout.collapse(SharedTensorLayout.expand(original), file: "m")
        try Self.expectSame(back, original, "empty")
        #expect(try Self.shared(back, "e.weight").expanded().isEmpty)
    }

    // MARK: expand errors

    @Test("expand refuses a taken slot-array name, two maps or slot arrays under one array name, and non-finite values")
    func unstorable() throws {
        let dir = try TemporaryDirectory(prefix: "rps-unstorable")
        func check(_ entries: [TensorEntry], _ tensor: String, _ reason: String) throws {
            let checkpoint = try Checkpoint(entries: entries)
            let error = SharedTensorLayoutError.unstorable(tensor: tensor, reason: reason)
            #expect(throws: error) { try SharedTensorLayout.expand(checkpoint) }
            for format in Format.allCases {
                #expect(throws: error) { try format.write(checkpoint, in: dir) }
            }
            #expect(try dir.entries().isEmpty)
            #expect(error.description == "tensor '\(tensor)' cannot be stored: \(reason)")
        }
        let a = TensorEntry(name: "a.weight", payload: .shared(Self.a()))
        try check([try Self.dense("rps.3.slots", [1]), a], "a.weight", "its slot array's name 'rps.3.slots' is taken")
        try check([a, TensorEntry(name: "rps.3.slots", payload: .shared(Self.b()))], "a.weight", "its slot array's name 'rps.3.slots' is taken")
        let otherSeed = SharedTensor(shape: Shape([2, 4]), arrayName: "rps.3", map: RandomFoldMap(seed: 8, slotCount: 10), offset: 12, scale: 2,
                                     slots: Self.slotsA, sharedElementCount: 20)
        try check([a, TensorEntry(name: "b.weight", payload: .shared(otherSeed))], "b.weight", "it claims array 'rps.3' with a different map or slots")
        let otherChunk = SharedTensor(shape: Shape([2, 4]), arrayName: "rps.3", map: RandomFoldMap(seed: 7, slotCount: 10, chunk: 5), offset: 12,
                                      scale: 2, slots: Self.slotsA, sharedElementCount: 20)
        try check([a, TensorEntry(name: "b.weight", payload: .shared(otherChunk))], "b.weight", "it claims array 'rps.3' with a different map or slots")
        let otherSlots = SharedTensor(shape: Shape([2, 4]), arrayName: "rps.3", map: Self.mapA, offset: 12, scale: 2,
                                      slots: Self.slotsA.map { $0 + 1 }, sharedElementCount: 20)
        try check([a, TensorEntry(name: "b.weight", payload: .shared(otherSlots))], "b.weight", "it claims array 'rps.3' with a different map or slots")
        let otherCount = SharedTensor(shape: Shape([2, 4]), arrayName: "rps.3", map: Self.mapA, offset: 12, scale: 2, slots: Self.slotsA, sharedElementCount: 21)
        try check([a, TensorEntry(name: "b.weight", payload: .shared(otherCount))], "b.weight", "it claims array 'rps.3' with a different map or slots")
        let infiniteScale = SharedTensor(shape: Shape([3, 4]), arrayName: "rps.3", map: Self.mapA, offset: 0, scale: .infinity, slots: Self.slotsA, sharedElementCount: 20)
        try check([TensorEntry(name: "a.weight", payload: .shared(infiniteScale))], "a.weight", "its scale inf is not finite")
        var nanSlots = Self.slotsA
        nanSlots[2] = .nan
        let nanSlot = SharedTensor(shape: Shape([3, 4]), arrayName: "rps.3", map: Self.mapA, offset: 0, scale: 1, slots: nanSlots, sharedElementCount: 20)
        try check([TensorEntry(name: "a.weight", payload: .shared(nanSlot))], "a.weight", "slot 2 of array 'rps.3' is not finite")
    }

    // MARK: hostile records

    enum Hostile: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case invalidJSON, notObject, jsonString, arrayNotObject, recordedTwice, missingSpec, unknownSpec
        case seedNumber, seedNegative, seedPlus, seedTooLarge, seedEmpty
        case mZero, chunkZero, nZero, mString, nNegative, nFraction, ratioTooLarge
        case missingSlots, slotsWrongDType, slotsWrongShape, slotsTooFew, slotNaN, slotInfinite
        case noTensors, tensorsMissing, tensorsNotArray, tensorNotObject, noName, nameNotString
        case shapeNegative, shapeNotArray, shapeFraction, shapeOverflow, shapeMissing
        case offsetBeyond, sizeBeyond, offsetHuge, offsetMissing, scaleInfinite, scaleString, scaleMissing
        case positionNegative, positionFraction, positionMissing, positionTwice
        case nameTwice, nameOfDenseTensor, nameOfSlots, overlap, positionPastEnd

        var testDescription: String { rawValue }

        /// The broken checkpoint, the tensor the error names and its reason.
        func apply(to c: Checkpoint) throws -> (checkpoint: Checkpoint, tensor: String, reason: String) {
            let key = SharedTensorLayout.metadataKey, array = "rps.3", slots = "rps.3.slots"
            let sizeReason = "offset and size do not fit the array's 20 weights"
            func metadata(_ text: String) throws -> Checkpoint {
                try Checkpoint(entries: c.entries, metadata: c.metadata.filter { $0.key != key } + [MetadataEntry(key: key, value: .string(text))])
            }
            func record() throws -> [(key: String, value: JSONValue)] {
                try JSONParser.parse(Array(c.metadataValue(key)!.description.utf8)).objectMembers!
            }
            func edit(_ fields: [(key: String, value: JSONValue)], _ name: String, _ value: JSONValue?) -> [(key: String, value: JSONValue)] {
                var fields = fields
                if let i = fields.firstIndex(where: { $0.key == name }) {
                    if let value { fields[i].value = value } else { fields.remove(at: i) }
                } else if let value {
                    fields.append((name, value))
                }
                return fields
            }
            func arrayField(_ name: String, _ value: JSONValue?) throws -> Checkpoint {
                try metadata(JSONWriter.compact(.object(try record().map { m in (m.key, .object(edit(m.value.objectMembers!, name, value))) })))
            }
            /// Sets a field of the tensor record `index` (0: a.weight, 1: b.weight).
            func tensorField(_ index: Int, _ name: String, _ value: JSONValue?) throws -> Checkpoint {
                let fields = try record()[0].value.objectMembers!
                var tensors = fields.first { $0.key == "tensors" }!.value.arrayElements!
                tensors[index] = .object(edit(tensors[index].objectMembers!, name, value))
                return try arrayField("tensors", .array(tensors))
            }
            func replaceSlots(_ tensor: DenseTensor?) throws -> Checkpoint {
                var entries = c.entries
                let i = entries.firstIndex { $0.name == slots }!
                if let tensor { entries[i] = TensorEntry(name: slots, tensor: tensor) } else { entries.remove(at: i) }
                return try Checkpoint(entries: entries, metadata: c.metadata)
            }
            func slotValue(_ index: Int, _ value: Float) throws -> Checkpoint {
                var values = SharedTensorLayoutTests.slotsA
                values[index] = value
                return try replaceSlots(try DenseTensor(floats: values, shape: Shape([10])))
            }
            let n = JSONValue.number
            switch self {
            case .invalidJSON:
                let text = #"{"rps.3":"#
                var message = ""
                do { _ = try JSONParser.parse(Array(text.utf8)) } catch { message = error.description }
                return (try metadata(text), key, "invalid JSON: \(message)")
            case .notObject: return (try metadata("[1]"), key, "not an object")
            case .jsonString: return (try metadata(JSONWriter.quoted(SharedTensorLayoutTests.recordA)), key, "not an object")
            case .arrayNotObject: return (try metadata(#"{"rps.3":5}"#), array, "the array record is not an object")
            case .recordedTwice:
                let text = c.metadataValue(key)!.description
                return (try metadata(String(text.dropLast()) + "," + String(text.dropFirst())), array, "the array is recorded twice")
            case .missingSpec:
                return (try arrayField("spec", nil), array, "unknown sharing spec 'none' (this version reads rps-randomfold-splitmix64-v1)")
            case .unknownSpec:
                return (try arrayField("spec", .string("rps-v0")), array, "unknown sharing spec 'rps-v0' (this version reads rps-randomfold-splitmix64-v1)")
            case .seedNumber, .seedNegative, .seedPlus, .seedTooLarge, .seedEmpty:
                let value: JSONValue = switch self {
                case .seedNumber: n("7")
                case .seedNegative: .string("-1")
                case .seedPlus: .string("+7")
                case .seedTooLarge: .string("18446744073709551616")
                default: .string("")
                }
                return (try arrayField("seed", value), array, "seed must be a decimal string of an unsigned 64-bit integer")
            case .mZero, .chunkZero, .nZero, .mString, .nNegative, .nFraction:
                let (field, value): (String, JSONValue) = switch self {
                case .mZero: ("m", n("0"))
                case .chunkZero: ("chunk", n("0"))
                case .nZero: ("n", n("0"))
                case .mString: ("m", .string("10"))
                case .nNegative: ("n", n("-20"))
                default: ("n", n("20.0"))
                }
                return (try arrayField(field, value), array, "m, chunk and n must be positive integers")
            case .ratioTooLarge:
                return (try arrayField("n", n("10000001")), array, "n = 10000001 is more than 1000000 times m = 10")
            case .missingSlots: return (try replaceSlots(nil), array, "its slot array 'rps.3.slots' is missing")
            case .slotsWrongDType:
                return (try replaceSlots(try DenseTensor(floats: SharedTensorLayoutTests.slotsA, shape: Shape([10]), dtype: .f16)), slots,
                        "must be F32 [10], found F16 [10]")
            case .slotsWrongShape:
                return (try replaceSlots(try DenseTensor(floats: SharedTensorLayoutTests.slotsA, shape: Shape([2, 5]))), slots, "must be F32 [10], found F32 [2, 5]")
            case .slotsTooFew:
                return (try replaceSlots(try DenseTensor(floats: Array(SharedTensorLayoutTests.slotsA.prefix(9)), shape: Shape([9]))), slots, "must be F32 [10], found F32 [9]")
            case .slotNaN: return (try slotValue(4, .nan), slots, "slot 4 is not finite")
            case .slotInfinite: return (try slotValue(9, -.infinity), slots, "slot 9 is not finite")
            case .noTensors: return (try arrayField("tensors", .array([])), array, "no tensors")
            case .tensorsMissing: return (try arrayField("tensors", nil), array, "no tensors")
            case .tensorsNotArray: return (try arrayField("tensors", .object([])), array, "no tensors")
            case .tensorNotObject: return (try arrayField("tensors", .array([n("5")])), array, "a tensor record is not an object")
            case .noName: return (try tensorField(1, "name", nil), array, "a tensor record has no name")
            case .nameNotString: return (try tensorField(1, "name", n("1")), array, "a tensor record has no name")
            case .shapeNegative: return (try tensorField(0, "shape", .array([n("-3"), n("4")])), "a.weight", "bad shape")
            case .shapeNotArray: return (try tensorField(0, "shape", n("12")), "a.weight", "bad shape")
            case .shapeFraction: return (try tensorField(0, "shape", .array([n("3.0"), n("4")])), "a.weight", "bad shape")
            case .shapeOverflow: return (try tensorField(0, "shape", .array([n("4611686018427387904"), n("4")])), "a.weight", "bad shape")
            case .shapeMissing: return (try tensorField(0, "shape", nil), "a.weight", "bad shape")
            case .offsetBeyond: return (try tensorField(1, "offset", n("21")), "b.weight", sizeReason)
            case .sizeBeyond: return (try tensorField(1, "offset", n("13")), "b.weight", sizeReason)
            case .offsetHuge: return (try tensorField(1, "offset", n("9223372036854775808")), "b.weight", sizeReason)
            case .offsetMissing: return (try tensorField(1, "offset", nil), "b.weight", sizeReason)
            case .scaleInfinite: return (try tensorField(0, "scale", n("1e39")), "a.weight", "scale must be a finite number")
            case .scaleString: return (try tensorField(0, "scale", .string("0.5")), "a.weight", "scale must be a finite number")
            case .scaleMissing: return (try tensorField(0, "scale", nil), "a.weight", "scale must be a finite number")
            case .positionNegative: return (try tensorField(1, "position", n("-1")), "b.weight", "position must be a non-negative integer")
            case .positionFraction: return (try tensorField(1, "position", n("3.5")), "b.weight", "position must be a non-negative integer")
            case .positionMissing: return (try tensorField(1, "position", nil), "b.weight", "position must be a non-negative integer")
            case .positionTwice: return (try tensorField(1, "position", n("1")), "b.weight", "position 1 is used twice")
            case .nameTwice: return (try tensorField(1, "name", .string("a.weight")), "a.weight", "the name is used twice")
            case .nameOfDenseTensor: return (try tensorField(1, "name", .string("mid")), "mid", "the name is used twice")
            case .nameOfSlots: return (try tensorField(1, "name", .string(slots)), slots, "the name is used twice")
            case .overlap: return (try tensorField(1, "offset", n("10")), array, "tensors overlap in the global index space")
            case .positionPastEnd: return (try tensorField(1, "position", n("9")), "b.weight", "position 9 is past the end of the checkpoint")
            }
        }
    }

    /// The stored form of `oneArray()`: `norm`, `rps.3.slots`, `mid`, `tail` and the record.
    static func base() throws -> Checkpoint { try SharedTensorLayout.expand(oneArray()) }

    @Test("the base record reads back as the two shared tensors")
    func baseIsValid() throws {
        let base = try Self.base()
        #expect(base.entries.map(\.name) == ["norm", "rps.3.slots", "mid", "tail"])
        try Self.expectSame(try SharedTensorLayout.collapse(base, file: "memory"), try Self.oneArray(), "base")
    }

    @Test("each broken record or slot array is rejected with the exact error, in memory and from both formats", arguments: Hostile.allCases)
    func rejected(_ hostile: Hostile) throws {
        let (checkpoint, tensor, reason) = try hostile.apply(to: Self.base())
        #expect(throws: SharedTensorLayoutError.malformed(file: "memory", tensor: tensor, reason: reason)) {
            try SharedTensorLayout.collapse(checkpoint, file: "memory")
        }
        let dir = try TemporaryDirectory(prefix: "rps-hostile")
        for format in Format.allCases {
            let path = try format.write(checkpoint, in: dir, name: "hostile")
            let error = SharedTensorLayoutError.malformed(file: path, tensor: tensor, reason: reason)
            #expect(throws: error, "\(format)") { try CheckpointReader.open(path: path) }
            #expect(error.description == "\(path): shared tensor record '\(tensor)': \(reason)")
        }
    }

    @Test("a GGUF record that is not a string is rejected")
    func ggufNotString() throws {
        let base = try Self.base()
        let dir = try TemporaryDirectory(prefix: "rps-hostile")
        for value: GGUFValue in [.uint32(5), .array(elementType: .string, values: [.string(Self.recordA)])] {
            let checkpoint = try Checkpoint(entries: base.entries, metadata: [MetadataEntry(key: Self.key, value: .gguf(value))])
            let path = try Format.gguf.write(checkpoint, in: dir, name: "not-string")
            #expect(throws: SharedTensorLayoutError.malformed(file: path, tensor: Self.key, reason: "not a string (found a GGUF \(value.type.name))")) {
                try CheckpointReader.open(path: path)
            }
        }
    }

    @Test("seeded mutations of the record text and fields are read or rejected, never trap; what reads stores again the same")
    func mutations() throws {
        let base = try Self.base()
        let text = Array(Self.recordA.utf8)
        let alphabet = Array(#"0123456789-+.e,:[]{}" axnrps"#.utf8)
        let values: [JSONValue] = [.integer(0), .integer(1), .integer(2), .integer(4), .integer(9), .integer(10), .integer(12), .integer(19), .integer(20),
                                   .integer(21), .number("-1"), .number("1e3"), .number("0.5"), .integer(Int.max), .number("18446744073709551616"),
                                   .string("7"), .string("x"), .null, .array([]), .array([.integer(2), .integer(2)]), .object([])]
        let fields = ["spec", "seed", "m", "chunk", "n", "tensors", "name", "shape", "offset", "scale", "position"]
        var rng = SeededGenerator(seed: 2024)
        var rejected = 0, read = 0
        for round in 0..<1500 {
            var mutated: String
            if round % 2 == 0 {
                // Bytes: replace, delete or insert one to three of them.
                var bytes = text
                for _ in 0..<(1 + Int(rng.next() % 3)) {
                    let i = Int(rng.next() % UInt64(bytes.count))
                    switch rng.next() % 3 {
                    case 0: bytes[i] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                    case 1: bytes.remove(at: i)
                    default: bytes.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: i)
                    }
                }
                mutated = String(decoding: bytes, as: UTF8.self)
            } else {
                // Fields: set one field of the array or of a tensor record to a value of the wrong kind or size.
                var json = try JSONParser.parse(text)
                let field = fields[Int(rng.next() % UInt64(fields.count))], value = values[Int(rng.next() % UInt64(values.count))]
                var array = json.objectMembers![0].value.objectMembers!
                if field == "name" || field == "shape" || field == "offset" || field == "scale" || field == "position" {
                    var tensors = array.first { $0.key == "tensors" }!.value.arrayElements!
                    let t = Int(rng.next() % 2)
                    tensors[t] = .object(tensors[t].objectMembers!.map { $0.key == field ? ($0.key, value) : $0 })
                    array = array.map { $0.key == "tensors" ? ($0.key, .array(tensors)) : $0 }
                } else {
                    array = array.map { $0.key == field ? ($0.key, value) : $0 }
                }
                json = .object([("rps.3", .object(array))])
                mutated = JSONWriter.compact(json)
            }
            let checkpoint = try Checkpoint(entries: base.entries, metadata: [MetadataEntry(key: Self.key, value: .string(mutated))])
            let back: Checkpoint
            do {
                back = try SharedTensorLayout.collapse(checkpoint, file: "m")
            } catch is SharedTensorLayoutError {
                rejected += 1
                continue
            }
            read += 1
            #expect(back.metadataValue(Self.key) == nil && back["rps.3.slots"] == nil, "\(mutated)")
            for entry in back.entries {
                guard case .shared(let t) = entry.payload else { continue }
                if t.shape.elementCount <= 100_000 { #expect(!t.expanded().contains { !$0.isFinite }, "\(mutated)") }
            }
            // Whatever reads must store again and read back the same.
            let again = try SharedTensorLayout.collapse(SharedTensorLayout.expand(back), file: "m")
            try Self.expectSame(again, back, mutated)
        }
        #expect(rejected > 500 && read > 100, "\(rejected) rejected, \(read) read")
    }
}
