import TensorCore

/// Per-input-column importance weights for weight matrices, as llama.cpp's `llama-imatrix` writes them:
/// the mean squared input activation E[x_j²] of each column j (the diagonal of the input second moment,
/// a Hessian proxy). ggml's quantizers take these as `quant_weights`.
///
/// Normalisation follows llama-quantize exactly, so quantized bytes match it: legacy `.dat` values are
/// divided by their `ncall` (if positive); GGUF `in_sum2` values by `Float(lround(counts))` (or 1.0
/// where the rounded count is not positive).
public struct ImportanceMatrix: Sendable {
    /// Entry name (a tensor name such as `blk.0.attn_q.weight`) to its weights (`ne[0] × n_mat` values).
    public let entries: [String: [Float]]
    /// Entry names in file order.
    public let names: [String]
    public let datasets: [String]
    public let chunkCount: Int?

    public init(entries: [(String, [Float])], datasets: [String] = [], chunkCount: Int? = nil) {
        self.names = entries.map(\.0)
        self.entries = Dictionary(entries, uniquingKeysWith: { a, _ in a })
        self.datasets = datasets
        self.chunkCount = chunkCount
    }

    public subscript(name: String) -> [Float]? { entries[name] }

    /// This matrix without the entry `name`.
    public func removing(_ name: String) -> ImportanceMatrix {
        ImportanceMatrix(entries: names.filter { $0 != name }.map { ($0, entries[$0]!) }, datasets: datasets, chunkCount: chunkCount)
    }

    /// Loads a GGUF imatrix (detected by its magic) or a legacy `.dat` file.
    public static func load(path: String) throws -> ImportanceMatrix {
        let file = try MappedFile(path: path)
        if Array(file.bytes.prefix(4)) == GGUFHeader.magic {
            return try ImatrixGGUF.parse(file)
        }
        return try ImatrixDat.parse(file.bytes, file: path)
    }
}

/// The legacy binary form: `i32 n` then n × (`i32 len`, name, `i32 ncall`, `i32 nval`, nval × f32),
/// then an optional trailer (`i32 last_chunk`, `i32 len`, dataset name). Little-endian.
enum ImatrixDat {
    static func parse(_ bytes: UnsafeRawBufferPointer, file: String) throws(ImatrixError) -> ImportanceMatrix {
        var position = 0
        func fail(_ kind: ImatrixError.Kind) -> ImatrixError { ImatrixError(file: file, kind: kind) }
        func readInt32(_ what: String) throws(ImatrixError) -> Int32 {
            guard bytes.count - position >= 4 else { throw fail(.truncated(what)) }
            defer { position += 4 }
            return Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: Int32.self))
        }
        func readName(_ length: Int32, _ what: String) throws(ImatrixError) -> String {
            guard length >= 0, Int(length) <= bytes.count - position else { throw fail(.badNameLength(length)) }
            let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + Int(length))])
            position += Int(length)
            guard let s = String(validating: slice.bindMemory(to: UInt8.self), as: UTF8.self) else { throw fail(.invalidUTF8) }
            return s
        }
        let count = try readInt32("the entry count")
        guard count >= 1 else { throw fail(.badEntryCount(count)) }
        var entries: [(String, [Float])] = []
        var seen = Set<String>()
        for i in 0..<Int(count) {
            let length = try readInt32("entry #\(i)")
            guard length > 0 else { throw fail(.badNameLength(length)) }
            let name = try readName(length, "entry #\(i)")
            guard seen.insert(name).inserted else { throw fail(.duplicateEntry(name)) }
            let ncall = try readInt32("entry '\(name)'")
            let nval = try readInt32("entry '\(name)'")
            guard nval >= 1, Int(nval) <= (bytes.count - position) / 4 else { throw fail(.badValueCount(entry: name, count: nval)) }
            var values = [Float](repeating: 0, count: Int(nval))
            for j in 0..<Int(nval) {
                let v = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: position + 4 * j, as: UInt32.self)))
                guard v.isFinite else { throw fail(.nonFinite(entry: name)) }
                values[j] = ncall > 0 ? v / Float(ncall) : v
            }
            position += 4 * Int(nval)
            entries.append((name, values))
        }
        var datasets: [String] = []
        var chunkCount: Int?
        if position < bytes.count {
            chunkCount = Int(try readInt32("the trailer"))
            let length = try readInt32("the trailer")
            let dataset = try readName(length, "the dataset name")
            datasets = dataset.isEmpty ? [] : [dataset]     // llama.cpp records no dataset for an empty name
            guard position == bytes.count else { throw fail(.trailingBytes(bytes.count - position)) }
        }
        return ImportanceMatrix(entries: entries, datasets: datasets, chunkCount: chunkCount)
    }
}

/// The GGUF form: `general.type = "imatrix"`, `imatrix.datasets`, `imatrix.chunk_count`,
/// `imatrix.chunk_size`, and per weight W two F32 tensors `W.in_sum2` (ne [ne0, n_mat]) and
/// `W.counts` (ne [1, n_mat]).
enum ImatrixGGUF {
    static func parse(_ file: MappedFile) throws -> ImportanceMatrix {
        let header = try GGUFReader.header(of: file)
        func fail(_ kind: ImatrixError.Kind) -> ImatrixError { ImatrixError(file: file.path, kind: kind) }
        let metadata = Dictionary(header.metadata.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        guard metadata["general.type"]?.stringValue == "imatrix" else { throw fail(.notImatrixGGUF("general.type is not \"imatrix\"")) }
        for key in ["imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"] where metadata[key] == nil {
            throw fail(.notImatrixGGUF("missing \(key)"))
        }
        var datasets: [String] = []
        if case .array(_, let values)? = metadata["imatrix.datasets"] { datasets = values.compactMap(\.stringValue) }
        var infos: [String: GGUFHeader.TensorInfo] = [:]
        for info in header.tensors { infos[info.name] = info }
        func floats(_ info: GGUFHeader.TensorInfo, entry: String) throws(ImatrixError) -> [Float] {
            guard info.type == .f32 else { throw fail(.badTensor(entry: entry, reason: "'\(info.name)' must be F32")) }
            let start = header.dataOffset + info.offset
            let raw = UnsafeRawBufferPointer(rebasing: file.bytes[start..<(start + info.byteCount)])
            return (0..<(info.byteCount / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
        // llama.cpp refuses either half of a pair without the other ("mismatched sums and counts").
        for info in header.tensors where info.name.hasSuffix(".counts") {
            let name = String(info.name.dropLast(".counts".count))
            guard infos[name + ".in_sum2"] != nil else {
                throw fail(.badTensor(entry: name, reason: "'\(info.name)' has no '\(name).in_sum2' partner"))
            }
        }
        var entries: [(String, [Float])] = []
        for info in header.tensors where info.name.hasSuffix(".in_sum2") {
            let name = String(info.name.dropLast(".in_sum2".count))
            guard let countsInfo = infos[name + ".counts"] else { throw fail(.missingCounts(entry: name)) }
            let sums = try floats(info, entry: name)
            let counts = try floats(countsInfo, entry: name)
            let rowLength = info.dimensions.first ?? 1
            let (expected, overflow) = rowLength.multipliedReportingOverflow(by: counts.count)
            guard rowLength > 0, counts.count >= 1, !overflow, sums.count == expected else {
                throw fail(.badTensor(entry: name, reason: "in_sum2 has \(sums.count) values for \(counts.count) counts"))
            }
            guard sums.allSatisfy(\.isFinite), counts.allSatisfy(\.isFinite) else { throw fail(.nonFinite(entry: name)) }
            var values = [Float](repeating: 1, count: sums.count)
            for (e, c) in counts.enumerated() {
                let rounded = Float(c.rounded(.toNearestOrAwayFromZero))   // lround
                guard rounded > 0 else { continue }     // no (or a nonsensical negative) count: weight 1
                for i in 0..<rowLength { values[e * rowLength + i] = sums[e * rowLength + i] / rounded }
            }
            entries.append((name, values))
        }
        return ImportanceMatrix(entries: entries, datasets: datasets, chunkCount: metadata["imatrix.chunk_count"]?.integerValue)
    }
}
