import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// Compact sparse storage in safetensors: write → read gives back the same bytes and marks, the file
/// holds exactly the documented parts (or the dense tensor when that is not larger), and
/// `byteCount(in: .safetensors)` is the parts' data size. Sizes are recomputed here from the
/// documented formulas, independently of `SparseLayout.parts`.
@Suite("Sparse layout: round trips")
struct SparseLayoutTests {
    /// The documented `sparse-bitmask` data size: 8·rank + nnz·s + rows·⌈cols/8⌉ + 8·rows.
    static func bitmaskBytes(_ dims: [Int], elementBytes s: Int, nonZeroCount: Int) -> Int {
        let columns = dims.last!, rows = dims.dropLast().reduce(1, *)
        return 8 * dims.count + nonZeroCount * s + rows * ((columns + 7) / 8) + 8 * rows
    }

    /// The documented `sparse-n-of-m` data size: 8·rank + rows·k·s + rows·⌈k·b/8⌉ with k = cols·N/M.
    static func nOfMBytes(_ dims: [Int], elementBytes s: Int, kept n: Int, group m: Int) -> Int {
        let columns = dims.last!, rows = dims.dropLast().reduce(1, *), k = columns / m * n
        let b = Int(ceil(log2(Double(m))))
        return 8 * dims.count + rows * k * s + rows * ((k * b + 7) / 8)
    }

    /// Writes `entries`, returns the file as stored (parts not collapsed) and as read back.
    static func roundTrip(_ entries: [TensorEntry], metadata: [MetadataEntry] = [], in dir: TemporaryDirectory, file: String = "s.safetensors")
        throws -> (raw: Checkpoint, back: Checkpoint, path: String) {
        let path = dir.url(file)
        try SafetensorsWriter.write(try Checkpoint(entries: entries, metadata: metadata), to: path)
        return (try SafetensorsReader.open(path: path), try CheckpointReader.open(path: path), path)
    }

    static func record(_ raw: Checkpoint) throws -> JSONValue? {
        guard let text = raw.metadataValue(SparseLayout.metadataKey)?.description else { return nil }
        return try JSONParser.parse(Array(text.utf8))
    }

    static let floatTypes: [DType] = [.f32, .f16, .bf16]

    @Test("unstructured at 0 %…100 % zeros, rows not a multiple of 8, ranks 1–3: same bytes back, documented parts, exact size",
          arguments: floatTypes, [0.0, 0.3, 0.6, 0.9, 1.0])
    func unstructured(dtype: DType, zeroFraction: Double) throws {
        let dir = try TemporaryDirectory(prefix: "sparse-unstructured")
        let samples: [(name: String, prefix: String, dims: [Int])] = [
            ("layers.0.mlp.up_proj.weight", "layers.0.mlp.up_proj", [6, 13]), ("layers.0.attn.qkv.weight", "layers.0.attn.qkv", [3, 2, 20]),
            ("layers.0.norm", "layers.0.norm", [37]), ("lm_head.weight", "lm_head", [5, 8]),
        ]
        var entries = [TensorEntry(name: "first", tensor: try DenseTensor(floats: [1, 0, 2], shape: Shape([3])))]
        var tensors: [String: DenseTensor] = [:]
        for (i, s) in samples.enumerated() {
            let n = s.dims.reduce(1, *)
            let t = try SparseSamples.unstructured(s.dims, dtype: dtype, zeroCount: Int((zeroFraction * Double(n)).rounded()), seed: UInt64(10 + i))
            tensors[s.name] = t
            entries.append(TensorEntry(name: s.name, payload: .dense(t), sparsity: .unstructured))
        }
        let (raw, back, _) = try Self.roundTrip(entries, in: dir)
        #expect(back.entries.map(\.name) == entries.map(\.name))
        var expectedNames = ["first"]
        var compact: [String] = []
        for s in samples {
            let t = tensors[s.name]!, nnz = SparseSamples.nonZeroCount(t), size = dtype.bitsPerElement / 8
            let bytes = Self.bitmaskBytes(s.dims, elementBytes: size, nonZeroCount: nnz)
            let entry = try #require(entries.first { $0.name == s.name })
            guard case .dense(let read)? = back[s.name]?.payload else { Issue.record("\(s.name) not read back"); continue }
            #expect(read == t, "\(s.name)")
            if bytes < t.byteCount {
                compact.append(s.name)
                let parts = ["shape", "compressed", "bitmask", "row_offsets"].map { s.prefix + "." + $0 }
                expectedNames += parts
                let dims = s.dims.flatMap { withUnsafeBytes(of: Int64($0).littleEndian, Array.init) }
                #expect(try denseTensor(raw, parts[0]) == DenseTensor(dtype: .i64, shape: Shape([s.dims.count]), storage: ByteStorage(dims)))
                let compressed = try denseTensor(raw, parts[1]), bitmask = try denseTensor(raw, parts[2]), offsets = try denseTensor(raw, parts[3])
                let rows = s.dims.dropLast().reduce(1, *)
                #expect(compressed.dtype == dtype && compressed.shape == Shape([nnz]))
                #expect(bitmask.dtype == .u8 && bitmask.shape == Shape([rows, (s.dims.last! + 7) / 8]))
                #expect(offsets.dtype == .i64 && offsets.shape == Shape([rows]))
                #expect(parts.map { try! denseTensor(raw, $0).byteCount }.reduce(0, +) == bytes)
                #expect(entry.byteCount(in: .safetensors) == bytes && entry.byteCount(in: .shardedSafetensors) == bytes)
                #expect(back[s.name]?.sparsity == .unstructured)
            } else {
                expectedNames.append(s.name)
                #expect(entry.byteCount(in: .safetensors) == t.byteCount)
                #expect(back[s.name]?.sparsity == nil)
            }
            #expect(entry.byteCount(in: .gguf) == t.byteCount)
        }
        #expect(raw.entries.map(\.name) == expectedNames)
        let record = try Self.record(raw)
        #expect(record?.objectMembers?.map(\.key) ?? [] == compact)
        for name in compact {
            #expect(record?[name] == .object([("format", .string("sparse-bitmask")), ("pattern", .string("unstructured"))]))
        }
        // 0 % zeros never pays; 90 % and more always does here (at 60 %, 16-bit [5, 8] does not:
        // 93 bytes against 80); 100 % stores no value at all.
        #expect(compact.isEmpty == (zeroFraction == 0))
        if zeroFraction >= 0.9 { #expect(compact.count == samples.count) }
        if zeroFraction == 0.6 { #expect(compact.count == (dtype == .f32 ? 4 : 3)) }
        if zeroFraction == 1 { #expect(try denseTensor(raw, "lm_head.compressed").elementCount == 0) }
        #expect(back.metadataValue(SparseLayout.metadataKey) == nil)
    }

    @Test("N:M (2:4, 4:8, 1:4) with under-filled groups: stored as sparse-n-of-m, same bytes back, exact size",
          arguments: floatTypes, [(2, 4), (4, 8), (1, 4)])
    func nOfM(dtype: DType, pattern: (kept: Int, group: Int)) throws {
        let dir = try TemporaryDirectory(prefix: "sparse-nofm")
        let samples: [(name: String, prefix: String, dims: [Int])] = [
            ("layers.1.mlp.down_proj.weight", "layers.1.mlp.down_proj", [4, 16]), ("layers.1.conv.weight", "layers.1.conv", [2, 3, 24]),
            ("layers.1.scale", "layers.1.scale", [48]),
        ]
        let mark = SparsityPattern.nOfM(kept: pattern.kept, group: pattern.group)
        var entries: [TensorEntry] = []
        for (i, s) in samples.enumerated() {
            let t = try SparseSamples.nOfM(s.dims, dtype: dtype, kept: pattern.kept, group: pattern.group, seed: UInt64(20 + i), underfilled: true)
            entries.append(TensorEntry(name: s.name, payload: .dense(t), sparsity: mark))
        }
        let (raw, back, _) = try Self.roundTrip(entries, in: dir)
        let record = try #require(try Self.record(raw))
        for (entry, s) in zip(entries, samples) {
            guard case .dense(let t) = entry.payload else { continue }
            let bytes = Self.nOfMBytes(s.dims, elementBytes: dtype.bitsPerElement / 8, kept: pattern.kept, group: pattern.group)
            #expect(bytes < t.byteCount, "every sample here is smaller as N:M")
            #expect(SparseLayout.storage(for: t, pattern: mark) == .nOfM(kept: pattern.kept, group: pattern.group))
            #expect(record[s.name] == .object([("format", .string("sparse-n-of-m")), ("pattern", .string(mark.description))]))
            let rows = s.dims.dropLast().reduce(1, *), k = s.dims.last! / pattern.group * pattern.kept
            let compressed = try denseTensor(raw, s.prefix + ".compressed"), indices = try denseTensor(raw, s.prefix + ".indices")
            #expect(compressed.dtype == dtype && compressed.shape == Shape([rows, k]))
            #expect(indices.dtype == .u8 && indices.shape.dimensions.first == rows)
            #expect(raw[s.prefix + ".bitmask"] == nil && raw[s.prefix + ".row_offsets"] == nil)
            #expect(try denseTensor(raw, s.prefix + ".shape").byteCount + compressed.byteCount + indices.byteCount == bytes)
            #expect(entry.byteCount(in: .safetensors) == bytes && entry.byteCount(in: .gguf) == t.byteCount)
            guard case .dense(let read)? = back[s.name]?.payload else { Issue.record("\(s.name) not read back"); continue }
            #expect(read == t)
            #expect(back[s.name]?.sparsity == mark)
        }
        #expect(raw.entries.count == 3 * samples.count)
    }

    @Test("-0.0, NaN and subnormals are non-zero bytes and come back bit for bit (F64 and I8 too)")
    func exactBits() throws {
        let dir = try TemporaryDirectory(prefix: "sparse-bits")
        let f32: [UInt32] = [0, 0x8000_0000, 0x7FC0_0001, 0, 0, 0x0000_0001, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF80_0000]
        let f64: [UInt64] = [0, 0, 0, 0x8000_0000_0000_0000, 0, 0, 0, 0]
        let i8: [UInt8] = [0, 0, 0, 0, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        let a = try DenseTensor(dtype: .f32, shape: Shape([2, 8]), storage: ByteStorage(f32.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }))
        let b = try DenseTensor(dtype: .f64, shape: Shape([8]), storage: ByteStorage(f64.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }))
        let c = try DenseTensor(dtype: .i8, shape: Shape([40]), storage: ByteStorage(i8))
        let entries = [TensorEntry(name: "a.weight", payload: .dense(a), sparsity: .unstructured), TensorEntry(name: "b", payload: .dense(b), sparsity: .unstructured),
                       TensorEntry(name: "c", payload: .dense(c), sparsity: .unstructured)]
        let (raw, back, _) = try Self.roundTrip(entries, in: dir)
        #expect(try denseTensor(raw, "a.compressed").elementCount == 4 && denseTensor(raw, "b.compressed").elementCount == 1)
        #expect(try denseTensor(raw, "c.compressed").storage.array == [0xFF, 1])
        for e in entries { #expect(try denseTensor(back, e.name) == denseTensor(Checkpoint(entries: [e]), e.name), "\(e.name)") }
    }

    @Test("reading and writing again gives the same file; a quantized tensor's mark is ignored and both records coexist")
    func rewriteAndCoexistence() throws {
        let dir = try TemporaryDirectory(prefix: "sparse-rewrite")
        let q = MixedWidthSamples.make([4, 6], widths: [4, 2, 8], symmetric: false, seed: 5)
        let entries = [
            TensorEntry(name: "model.embed.weight", payload: .dense(try SparseSamples.unstructured([8, 12], dtype: .bf16, zeroCount: 70, seed: 1)), sparsity: .unstructured),
            TensorEntry(name: "model.q.weight", payload: .quantized(q), sparsity: .nOfM(kept: 2, group: 4)),
            TensorEntry(name: "model.k.weight", payload: .dense(try SparseSamples.nOfM([4, 16], dtype: .f16, kept: 2, group: 4, seed: 2)), sparsity: .nOfM(kept: 2, group: 4)),
            TensorEntry(name: "model.norm.weight", tensor: try DenseTensor(floats: [1, 2, 3], shape: Shape([3]))),
        ]
        let (raw, back, path) = try Self.roundTrip(entries, metadata: [MetadataEntry(key: "format", value: .string("pt"))], in: dir)
        #expect(raw.entries.map(\.name) == ["model.embed.shape", "model.embed.compressed", "model.embed.bitmask", "model.embed.row_offsets",
                                            "model.q.weight_packed", "model.q.weight_scale", "model.q.weight_zero_point", "model.q.weight_column_bits",
                                            "model.q.weight_shape", "model.k.shape", "model.k.compressed", "model.k.indices", "model.norm.weight"])
        #expect(raw.metadata.map(\.key) == ["format", CompressedTensorsLayout.metadataKey, SparseLayout.metadataKey])
        #expect(try Self.record(raw)?.objectMembers?.map(\.key) == ["model.embed.weight", "model.k.weight"])
        #expect(back.entries.map(\.name) == entries.map(\.name))
        #expect(back.entries.map(\.sparsity) == [.unstructured, nil, .nOfM(kept: 2, group: 4), nil])
        guard case .quantized(let read)? = back["model.q.weight"]?.payload else { throw TestFailure("model.q.weight is not quantized") }
        #expect(read == q)
        #expect(back.metadata == [MetadataEntry(key: "format", value: .string("pt"))])
        let again = dir.url("again.safetensors")
        try SafetensorsWriter.write(back, to: again)
        #expect(try TemporaryDirectory.read(again) == TemporaryDirectory.read(path))
    }

    @Test("GGUF stores marked tensors dense and reads them back unmarked")
    func ggufStaysDense() throws {
        let dir = try TemporaryDirectory(prefix: "sparse-gguf")
        let t = try SparseSamples.nOfM([4, 16], dtype: .f32, kept: 1, group: 4, seed: 3)
        let path = dir.url("s.gguf")
        try GGUFWriter.write(try Checkpoint(entries: [TensorEntry(name: "blk.0.ffn_up.weight", payload: .dense(t), sparsity: .nOfM(kept: 1, group: 4))]), to: path)
        let back = try CheckpointReader.open(path: path)
        #expect(back.entries.map(\.name) == ["blk.0.ffn_up.weight"] && back.entries[0].sparsity == nil)
        #expect(try denseTensor(back, "blk.0.ffn_up.weight") == t)
        #expect(back.metadata.allSatisfy { !$0.key.hasPrefix("modelpress.sparsity") })
    }

    @Test("a part whose name is taken by another tensor is refused, naming the file and the tensor")
    func partNameTaken() throws {
        let t = try SparseSamples.unstructured([4, 16], dtype: .f32, zeroCount: 50, seed: 4)
        let checkpoint = try Checkpoint(entries: [TensorEntry(name: "x.weight", payload: .dense(t), sparsity: .unstructured),
                                                  TensorEntry(name: "x.bitmask", tensor: try DenseTensor(floats: [1], shape: Shape([1])))])
        #expect(throws: SparseLayoutError.unstorable(file: "out.safetensors", tensor: "x.weight", reason: "its part 'x.bitmask' would take the name of another tensor")) {
            try SparseLayout.expand(checkpoint, file: "out.safetensors")
        }
        let dir = try TemporaryDirectory(prefix: "sparse-taken")
        let path = dir.url("out.safetensors")
        let error = SparseLayoutError.unstorable(file: path, tensor: "x.weight", reason: "its part 'x.bitmask' would take the name of another tensor")
        #expect(throws: error) { try SafetensorsWriter.write(checkpoint, to: path) }
        #expect(error.description == "\(path): sparse tensor 'x.weight' cannot be stored compactly: its part 'x.bitmask' would take the name of another tensor")
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("sharded: parts spread over two shards (one tensor split between them) read back as the dense tensors")
    func sharded() throws {
        let dir = try TemporaryDirectory(prefix: "sparse-sharded")
        let a = try SparseSamples.unstructured([6, 13], dtype: .f16, zeroCount: 60, seed: 6)
        let b = try SparseSamples.nOfM([4, 16], dtype: .bf16, kept: 2, group: 4, seed: 7, underfilled: true)
        let norm = try DenseTensor(floats: [1, 2], shape: Shape([2]))
        let single = try SparseLayout.expand(try Checkpoint(entries: [
            TensorEntry(name: "a.weight", payload: .dense(a), sparsity: .unstructured), TensorEntry(name: "norm", tensor: norm),
            TensorEntry(name: "b.weight", payload: .dense(b), sparsity: .nOfM(kept: 2, group: 4)),
        ]), file: "memory")
        #expect(single.entries.map(\.name) == ["a.shape", "a.compressed", "a.bitmask", "a.row_offsets", "norm", "b.shape", "b.compressed", "b.indices"])
        // Shard 1: a.shape, a.compressed, norm, b.indices; shard 2: a.bitmask, a.row_offsets, b.shape, b.compressed.
        let shards = [["a.shape", "a.compressed", "norm", "b.indices"], ["a.bitmask", "a.row_offsets", "b.shape", "b.compressed"]]
        let metadata = single.metadata.map { (key: $0.key, value: $0.value.description) }
        var map: [(tensor: String, shard: String)] = []
        for (i, names) in shards.enumerated() {
            let file = "model-0000\(i + 1)-of-00002.safetensors"
            let tensors = try names.map { try denseTensor(single, $0) }
            try SafetensorsWriter.write(to: dir.url(file), metadata: metadata,
                                        tensors: zip(names, tensors).map { .init(name: $0, dtype: $1.dtype, shape: $1.shape) }) { tensors[$0] }
            map += names.map { ($0, file) }
        }
        try dir.write(text: ShardedFiles.index(map), to: ShardedSafetensors.indexFileName)
        let back = try CheckpointReader.open(path: dir.path)
        #expect(back.entries.map(\.name) == ["a.weight", "norm", "b.weight"])
        #expect(try denseTensor(back, "a.weight") == a && denseTensor(back, "b.weight") == b && denseTensor(back, "norm") == norm)
        #expect(back.entries.map(\.sparsity) == [.unstructured, nil, .nOfM(kept: 2, group: 4)])
        #expect(back["a.weight"]!.byteCount(in: .shardedSafetensors) == Self.bitmaskBytes([6, 13], elementBytes: 2, nonZeroCount: 18))
    }

    @Test("through .zst: the same tensors and marks back")
    func zstd() throws {
        let dir = try TemporaryDirectory(prefix: "sparse-zst")
        let t = try SparseSamples.unstructured([16, 24], dtype: .bf16, zeroCount: 300, seed: 8)
        let checkpoint = try Checkpoint(entries: [TensorEntry(name: "w.weight", payload: .dense(t), sparsity: .unstructured)])
        let path = dir.url("s.safetensors.zst")
        try ZstdCheckpoint.write(to: path, threadCount: 2) { try SafetensorsWriter.write(checkpoint, to: $0) }
        #expect(try ZstdCheckpoint.denseSafetensorsHeader(path: path) == nil)
        let back = try CheckpointReader.open(path: path)
        #expect(try denseTensor(back, "w.weight") == t && back["w.weight"]?.sparsity == .unstructured)
    }
}
