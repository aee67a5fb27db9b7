import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// Importance matrices (formats.md §4): the three fixture forms of one calibration run agree bit for
/// bit after llama-quantize's normalisation, and every `ImatrixError` kind is produced by a hand-built
/// hostile file, for the legacy `.dat` form and the GGUF form.
@Suite("Importance matrix files")
struct ImportanceMatrixTests {
    typealias B = GGUFBytes

    // MARK: Helpers

    static func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    /// Writes `bytes` to a fresh file and loads it (the folder lives as long as the call).
    private func load(_ bytes: [UInt8], name: String = "imatrix.dat") throws -> ImportanceMatrix {
        let dir = try TemporaryDirectory(prefix: "imatrix")
        return try ImportanceMatrix.load(path: try dir.write(bytes, to: name))
    }

    /// Asserts that loading `bytes` fails with exactly `kind`, naming the file.
    private func expectRejected(_ bytes: [UInt8], _ kind: ImatrixError.Kind, name: String = "imatrix.dat",
                                sourceLocation: SourceLocation = #_sourceLocation) throws {
        let dir = try TemporaryDirectory(prefix: "imatrix-bad")
        let path = try dir.write(bytes, to: name)
        #expect(throws: ImatrixError(file: path, kind: kind), sourceLocation: sourceLocation) {
            try ImportanceMatrix.load(path: path)
        }
    }

    // MARK: Legacy .dat builders

    static func i32(_ v: Int32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
    static func f32(_ v: Float) -> [UInt8] { withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) }

    /// One `.dat` entry: i32 name length, name, i32 ncall, i32 nval, nval f32.
    static func datEntry(_ name: String, ncall: Int32, _ values: [Float]) -> [UInt8] {
        i32(Int32(name.utf8.count)) + Array(name.utf8) + i32(ncall) + i32(Int32(values.count)) + values.flatMap(f32)
    }

    /// i32 entry count, the entries, and the optional trailer (i32 last_chunk, i32 length, dataset name).
    static func dat(_ entries: [[UInt8]], count: Int32? = nil, trailer: (chunks: Int32, dataset: String)? = nil) -> [UInt8] {
        var out = i32(count ?? Int32(entries.count))
        for e in entries { out += e }
        if let trailer { out += i32(trailer.chunks) + i32(Int32(trailer.dataset.utf8.count)) + Array(trailer.dataset.utf8) }
        return out
    }

    // MARK: GGUF imatrix builders

    /// The three `imatrix.*` keys after `general.type` (each can be left out or replaced).
    static func imatrixMetadata(type: String? = "imatrix", omit: String? = nil) -> [[UInt8]] {
        var records: [[UInt8]] = []
        if let type { records.append(B.kv("general.type", .string(type))) }
        let keys: [(String, GGUFValue)] = [
            ("imatrix.datasets", .array(elementType: .string, values: [.string("calib.txt")])),
            ("imatrix.chunk_count", .uint32(3)),
            ("imatrix.chunk_size", .uint32(512)),
        ]
        for (k, v) in keys where k != omit { records.append(B.kv(k, v)) }
        return records
    }

    /// `name.in_sum2` F32 ne [ne0, n_mat] and `name.counts` F32 ne [1, n_mat].
    static func pair(_ name: String, sums: [Float], counts: [Float]) -> [B.Tensor] {
        [.f32(name + ".in_sum2", sums, ne: [Int64(sums.count / counts.count), Int64(counts.count)]),
         .f32(name + ".counts", counts, ne: [1, Int64(counts.count)])]
    }

    static func imatrixGGUF(metadata: [[UInt8]] = imatrixMetadata(), tensors: [B.Tensor]) -> [UInt8] {
        B.file(metadata: metadata, tensors: tensors)
    }

    // MARK: The three fixture forms

    @Test("imatrix.dat, imatrix.gguf and calib.safetensors (act_sq) give identical weights for every entry")
    func fixtureFormsAgree() throws {
        let dat = try ImportanceMatrix.load(path: Fixtures.url("imatrix.dat").path)
        let gguf = try ImportanceMatrix.load(path: Fixtures.url("imatrix.gguf").path)
        let calib = try SafetensorsReader.open(path: Fixtures.url("calib.safetensors").path)
        var actSq: [String: [Float]] = [:]
        for entry in calib.entries where entry.name.hasSuffix(".act_sq") {
            actSq[String(entry.name.dropLast(".act_sq".count))] = try denseTensor(calib, entry.name).floats()
        }
        #expect(calib.metadataValue("count") == .string("2048"))
        #expect(actSq.count == 7)
        // Both llama.cpp forms list the entries sorted by name, and cover the same weights as act_sq.
        #expect(dat.names == actSq.keys.sorted())
        #expect(gguf.names == dat.names)
        for name in dat.names {
            let expected = try #require(actSq[name])
            #expect(Self.bits(try #require(dat[name])) == Self.bits(expected), "\(name): .dat differs from act_sq")
            #expect(Self.bits(try #require(gguf[name])) == Self.bits(expected), "\(name): .gguf differs from act_sq")
        }
        #expect(dat.datasets == ["calibration-wiki.train.raw"] && gguf.datasets == ["calibration-wiki.train.raw"])
        #expect(dat.chunkCount == 4 && gguf.chunkCount == 4)
    }

    @Test("GGUF weights are in_sum2 / counts, computed independently from the raw tensors")
    func ggufNormalisation() throws {
        let raw = try GGUFReader.open(path: Fixtures.url("imatrix.gguf").path)
        let gguf = try ImportanceMatrix.load(path: Fixtures.url("imatrix.gguf").path)
        #expect(raw.metadataValue("general.type") == .gguf(.string("imatrix")))
        for name in gguf.names {
            let sums = try denseTensor(raw, name + ".in_sum2").floats()
            let counts = try denseTensor(raw, name + ".counts").floats()
            #expect(counts == [2048])
            #expect(Self.bits(try #require(gguf[name])) == Self.bits(sums.map { $0 / 2048 }), "\(name)")
        }
    }

    // MARK: Legacy .dat: valid forms

    @Test(".dat: values are divided by ncall when positive, kept raw otherwise; the trailer is optional")
    func datValid() throws {
        let plain = try load(Self.dat([Self.datEntry("b.weight", ncall: 4, [4, 2, 1]), Self.datEntry("a.weight", ncall: 0, [3, 5]),
                                       Self.datEntry("c.weight", ncall: -2, [7])]))
        #expect(plain.names == ["b.weight", "a.weight", "c.weight"])
        #expect(plain["b.weight"] == [1, 0.5, 0.25] && plain["a.weight"] == [3, 5] && plain["c.weight"] == [7])
        #expect(plain.datasets.isEmpty && plain.chunkCount == nil)
        let trailed = try load(Self.dat([Self.datEntry("w", ncall: 2, [6])], trailer: (9, "wiki.raw")))
        #expect(trailed["w"] == [3] && trailed.datasets == ["wiki.raw"] && trailed.chunkCount == 9)
        let emptyDataset = try load(Self.dat([Self.datEntry("w", ncall: 1, [6])], trailer: (1, "")))
        #expect(emptyDataset.datasets.isEmpty && emptyDataset.chunkCount == 1)   // llama.cpp records no dataset for an empty name
    }

    // MARK: Legacy .dat: one test per error kind

    @Test(".dat truncated: inside the count, an entry header, the values' counts, or the trailer")
    func datTruncated() throws {
        try expectRejected([], .truncated("the entry count"))
        try expectRejected([1, 0], .truncated("the entry count"))
        try expectRejected(Self.i32(2) + Self.datEntry("w", ncall: 1, [1]), .truncated("entry #1"))
        try expectRejected(Self.i32(1) + Self.i32(1) + Array("w".utf8) + [1, 0], .truncated("entry 'w'"))
        try expectRejected(Self.i32(1) + Self.i32(1) + Array("w".utf8) + Self.i32(1), .truncated("entry 'w'"))
        try expectRejected(Self.dat([Self.datEntry("w", ncall: 1, [1])]) + [4, 0], .truncated("the trailer"))
        try expectRejected(Self.dat([Self.datEntry("w", ncall: 1, [1])]) + Self.i32(3) + [1], .truncated("the trailer"))
    }

    @Test(".dat badEntryCount: the count must be at least 1", arguments: [Int32(0), -1, .min])
    func datBadEntryCount(_ count: Int32) throws {
        try expectRejected(Self.i32(count) + Self.datEntry("w", ncall: 1, [1]), .badEntryCount(count))
    }

    @Test(".dat badNameLength: zero, negative, or past the end of the file (entries and dataset)")
    func datBadNameLength() throws {
        try expectRejected(Self.i32(1) + Self.i32(0) + Self.i32(1) + Self.i32(1) + Self.f32(1), .badNameLength(0))
        try expectRejected(Self.i32(1) + Self.i32(-5) + Array("hello".utf8), .badNameLength(-5))
        try expectRejected(Self.i32(1) + Self.i32(.min), .badNameLength(.min))
        try expectRejected(Self.i32(1) + Self.i32(100) + Array("abc".utf8), .badNameLength(100))
        let entry = Self.dat([Self.datEntry("w", ncall: 1, [1])])
        try expectRejected(entry + Self.i32(1) + Self.i32(50) + Array("x".utf8), .badNameLength(50))
        try expectRejected(entry + Self.i32(1) + Self.i32(-1), .badNameLength(-1))
    }

    @Test(".dat invalidUTF8: entry names must be UTF-8")
    func datInvalidUTF8() throws {
        try expectRejected(Self.i32(1) + Self.i32(2) + [0x77, 0xFF] + Self.i32(1) + Self.i32(1) + Self.f32(1), .invalidUTF8)
    }

    @Test(".dat badValueCount: nval must be at least 1 and fit in the file")
    func datBadValueCount() throws {
        let head = Self.i32(1) + Self.i32(1) + Array("w".utf8) + Self.i32(1)
        try expectRejected(head + Self.i32(0), .badValueCount(entry: "w", count: 0))
        try expectRejected(head + Self.i32(-3) + Self.f32(1), .badValueCount(entry: "w", count: -3))
        try expectRejected(head + Self.i32(3) + Self.f32(1) + Self.f32(2), .badValueCount(entry: "w", count: 3))
        try expectRejected(head + Self.i32(.max) + Self.f32(1), .badValueCount(entry: "w", count: .max))
    }

    @Test(".dat duplicateEntry: a name twice")
    func datDuplicateEntry() throws {
        try expectRejected(Self.dat([Self.datEntry("w", ncall: 1, [1]), Self.datEntry("v", ncall: 1, [1]), Self.datEntry("w", ncall: 1, [2])]),
                           .duplicateEntry("w"))
    }

    @Test(".dat nonFinite: NaN or Inf anywhere in the values", arguments: [Float.nan, .infinity, -.infinity, .signalingNaN])
    func datNonFinite(_ bad: Float) throws {
        try expectRejected(Self.dat([Self.datEntry("ok", ncall: 1, [1]), Self.datEntry("w", ncall: 2, [1, 2, bad, 4])]),
                           .nonFinite(entry: "w"))
    }

    @Test(".dat trailingBytes: anything after the trailer")
    func datTrailingBytes() throws {
        let file = Self.dat([Self.datEntry("w", ncall: 1, [1])], trailer: (4, "calib"))
        try expectRejected(file + [0, 0, 0], .trailingBytes(3))
        try expectRejected(file + Self.datEntry("x", ncall: 1, [1]), .trailingBytes(Self.datEntry("x", ncall: 1, [1]).count))
    }

    @Test("every ImatrixError.Kind has a test here and a one-line message naming the file")
    func everyKindCovered() {
        let samples: [ImatrixError.Kind] = [
            .truncated("the entry count"), .badEntryCount(0), .badNameLength(-1), .badValueCount(entry: "w", count: 0),
            .duplicateEntry("w"), .invalidUTF8, .nonFinite(entry: "w"), .notImatrixGGUF("missing imatrix.datasets"),
            .missingCounts(entry: "w"), .badTensor(entry: "w", reason: "'w.in_sum2' must be F32"), .trailingBytes(3),
        ]
        for kind in samples {
            // No default: a new case does not compile until it is listed here (and tested).
            switch kind {
            case .truncated, .badEntryCount, .badNameLength, .badValueCount, .duplicateEntry, .invalidUTF8, .nonFinite,
                 .notImatrixGGUF, .missingCounts, .badTensor, .trailingBytes:
                break
            }
            let text = ImatrixError(file: "i.dat", kind: kind).description
            #expect(text.hasPrefix("i.dat: ") && text.count > 10 && !text.contains("\n"), "\(text)")
        }
        #expect(ImatrixError(file: "i", kind: .missingCounts(entry: "w")).description == "i: 'w.in_sum2' has no 'w.counts' partner")
    }

    // MARK: GGUF imatrix

    @Test("GGUF: valid dense and MoE entries; zero counts give weight 1; counts are rounded (lround)")
    func ggufValid() throws {
        let tensors = Self.pair("blk.0.ffn_down_exps.weight", sums: [2, 4, 6, 8, 1, 1, 5, 5, 9, 9, 9, 9], counts: [2, 0, 2.5])
            + Self.pair("blk.0.attn_q.weight", sums: [3, 6], counts: [3])
            + [.f32("ignored.tensor", [1, 2])]
        let m = try load(Self.imatrixGGUF(tensors: tensors), name: "i.gguf")
        #expect(m.names == ["blk.0.ffn_down_exps.weight", "blk.0.attn_q.weight"])
        #expect(m["blk.0.ffn_down_exps.weight"] == [1, 2, 3, 4, 1, 1, 1, 1, 3, 3, 3, 3])
        #expect(m["blk.0.attn_q.weight"] == [1, 2])
        #expect(m.datasets == ["calib.txt"] && m.chunkCount == 3)
    }

    @Test("GGUF notImatrixGGUF: general.type must be \"imatrix\" and all three imatrix.* keys present")
    func ggufNotImatrix() throws {
        let tensors = Self.pair("w", sums: [1], counts: [1])
        let notImatrix = ImatrixError.Kind.notImatrixGGUF("general.type is not \"imatrix\"")
        try expectRejected(Self.imatrixGGUF(metadata: Self.imatrixMetadata(type: "model"), tensors: tensors), notImatrix, name: "i.gguf")
        try expectRejected(Self.imatrixGGUF(metadata: Self.imatrixMetadata(type: nil), tensors: tensors), notImatrix, name: "i.gguf")
        try expectRejected(Self.imatrixGGUF(metadata: [B.kv("general.type", .uint32(1))] + Self.imatrixMetadata(type: nil), tensors: tensors),
                           notImatrix, name: "i.gguf")
        for key in ["imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"] {
            try expectRejected(Self.imatrixGGUF(metadata: Self.imatrixMetadata(omit: key), tensors: tensors),
                               .notImatrixGGUF("missing \(key)"), name: "i.gguf")
        }
    }

    @Test("GGUF missingCounts: an in_sum2 without its counts")
    func ggufMissingCounts() throws {
        let tensors = Self.pair("a", sums: [1], counts: [1]) + [.f32("w.in_sum2", [1, 2], ne: [2, 1])]
        try expectRejected(Self.imatrixGGUF(tensors: tensors), .missingCounts(entry: "w"), name: "i.gguf")
    }

    @Test("GGUF badTensor: counts without in_sum2, non-F32 tensors, sizes that do not match")
    func ggufBadTensor() throws {
        try expectRejected(Self.imatrixGGUF(tensors: [.f32("w.counts", [1], ne: [1, 1])]),
                           .badTensor(entry: "w", reason: "'w.counts' has no 'w.in_sum2' partner"), name: "i.gguf")
        let f16Sums = B.Tensor("w.in_sum2", ne: [2, 1], type: GGMLType.f16.rawValue, data: [0, 0x3C, 0, 0x40])
        try expectRejected(Self.imatrixGGUF(tensors: [f16Sums, .f32("w.counts", [1], ne: [1, 1])]),
                           .badTensor(entry: "w", reason: "'w.in_sum2' must be F32"), name: "i.gguf")
        let f16Counts = B.Tensor("w.counts", ne: [1, 1], type: GGMLType.f16.rawValue, data: [0, 0x3C])
        try expectRejected(Self.imatrixGGUF(tensors: [.f32("w.in_sum2", [1, 2], ne: [2, 1]), f16Counts]),
                           .badTensor(entry: "w", reason: "'w.counts' must be F32"), name: "i.gguf")
        // 8 sums for 3 counts: not a whole number of rows.
        try expectRejected(Self.imatrixGGUF(tensors: [.f32("w.in_sum2", Array(repeating: 1, count: 8), ne: [4, 2]),
                                                      .f32("w.counts", [1, 1, 1], ne: [1, 3])]),
                           .badTensor(entry: "w", reason: "in_sum2 has 8 values for 3 counts"), name: "i.gguf")
        // An empty in_sum2.
        try expectRejected(Self.imatrixGGUF(tensors: [.f32("w.in_sum2", [], ne: [0, 1]), .f32("w.counts", [1], ne: [1, 1])]),
                           .badTensor(entry: "w", reason: "in_sum2 has 0 values for 1 counts"), name: "i.gguf")
    }

    @Test("GGUF nonFinite: NaN or Inf in sums or counts")
    func ggufNonFinite() throws {
        try expectRejected(Self.imatrixGGUF(tensors: Self.pair("w", sums: [1, .nan], counts: [1])), .nonFinite(entry: "w"), name: "i.gguf")
        try expectRejected(Self.imatrixGGUF(tensors: Self.pair("w", sums: [1, 2], counts: [.infinity])), .nonFinite(entry: "w"), name: "i.gguf")
    }

    @Test("GGUF: a negative count is treated like no count (weight 1), as llama-quantize's count > 0 rule does")
    func ggufNegativeCount() throws {
        let m = try load(Self.imatrixGGUF(tensors: Self.pair("w", sums: [4, 8, 4, 8], counts: [-2, 4])), name: "i.gguf")
        #expect(m["w"] == [1, 1, 1, 2])
    }

    @Test("GGUF: a malformed GGUF imatrix fails as GGUF (it is not re-read as .dat)")
    func ggufMalformed() throws {
        let file = Self.imatrixGGUF(tensors: Self.pair("w", sums: [1], counts: [1]))
        let dir = try TemporaryDirectory(prefix: "imatrix-cut")
        let path = try dir.write(Array(file.dropLast(40)), to: "cut.gguf")
        #expect(throws: GGUFError(file: path, kind: .dataOutOfBounds(tensor: "w.counts"))) {
            try ImportanceMatrix.load(path: path)
        }
    }
}
