import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// Declared sizes that the file does not back (issue 11, part 5): each is refused with a typed
/// exit-65 error naming the file and the field before anything of that size is allocated. One test
/// per bound the audit (README, "Resource limits") added; the bounds that were already there have
/// their hostile tests beside their readers.
@Suite("Resource limits")
struct ResourceLimitTests {
    /// A JSON document longer than `JSONParser.maximumLength` (a sharded index, adapter_config.json,
    /// a zstd index or a metadata record) is refused before parsing.
    @Test func jsonDocumentLength() {
        let bytes = [UInt8](repeating: 0x20, count: JSONParser.maximumLength + 1)
        #expect(throws: JSONError(message: "document of 100000001 bytes is longer than the 100000000 bytes read", offset: 0)) {
            try JSONParser.parse(bytes)
        }
    }

    /// A zstd archive whose index declares a chunk longer than `ZstdArchive.chunkSize` (decoding it
    /// sliced the 4 MiB scratch buffers past their end: a trap).
    @Test func zstdChunkLength() throws {
        let length = ZstdArchive.chunkSize + 8
        let frame = try [UInt8](repeating: 0, count: length).withUnsafeBytes { try ZstdFrame.compress($0) }
        let index = Array("{\"format\":\"modelpress-zstd\",\"version\":1,\"inner\":\"safetensors\",\"size\":\(length),\"chunks\":[[\(length),0]]}".utf8)
        let indexFrame = GGUFBytes.u32(0x184D_2A5D) + GGUFBytes.u32(UInt32(index.count)) + index
        let frames = [(frame.count, length), (indexFrame.count, 0)]
        var table = GGUFBytes.u32(0x184D_2A5E) + GGUFBytes.u32(UInt32(8 * frames.count + 9))
        for (compressed, decompressed) in frames { table += GGUFBytes.u32(UInt32(compressed)) + GGUFBytes.u32(UInt32(decompressed)) }
        table += GGUFBytes.u32(UInt32(frames.count)) + [0] + GGUFBytes.u32(0x8F92_EAB1)
        let dir = try TemporaryDirectory(prefix: "limits")
        let path = try dir.write(frame + indexFrame + table, to: "chunk.safetensors.zst")
        do {
            _ = try ZstdCheckpoint.open(path: path)
            Issue.record("no error")
        } catch let error as ZstdArchiveError {
            #expect(error.description == "\(path): index chunk 0 holds 4194312 bytes, more than the 4194304 a chunk may hold")
        }
    }

    /// A GGUF imatrix whose `in_sum2` rows are 2^60 long with no data, beside 16 counts: the value
    /// count rows × counts overflowed (a trap) before it was compared with the sums.
    @Test func imatrixRowsTimesCounts() throws {
        let file = GGUFBytes.file(
            metadata: [GGUFBytes.kv("general.type", .string("imatrix")),
                       GGUFBytes.kv("imatrix.datasets", .array(elementType: .string, values: [.string("d")])),
                       GGUFBytes.kv("imatrix.chunk_count", .uint32(1)), GGUFBytes.kv("imatrix.chunk_size", .uint32(1))],
            tensors: [.f32("w.in_sum2", [], ne: [1 << 60, 0]), .f32("w.counts", [Float](repeating: 1, count: 16), ne: [1, 16])])
        let dir = try TemporaryDirectory(prefix: "limits")
        let path = try dir.write(file, to: "imatrix.gguf")
        #expect(throws: ImatrixError(file: path, kind: .badTensor(entry: "w", reason: "in_sum2 has 0 values for 16 counts"))) {
            try ImportanceMatrix.load(path: path)
        }
    }

    /// A mixed-width tensor whose every column has width 0 stores only its widths, so its row count
    /// is not backed by any byte: [2^40, 64] would have allocated 2^46 codes. Refused beyond
    /// max(2^26, 256 × stored bytes) elements.
    @Test func mixedWidthUnbackedRows() throws {
        let sample = MixedWidthSamples.make([2, 64], widths: [0], symmetric: true, seed: 3)
        var checkpoint = try CompressedTensorsLayout.expand(Checkpoint(entries: [TensorEntry(name: "w.weight", payload: .quantized(sample))]))
        let rows = 1 << 40
        func replace(_ name: String, _ tensor: DenseTensor) throws {
            let position = try #require(checkpoint.entries.firstIndex { $0.name == name })
            checkpoint.replacePayload(at: position, with: .dense(tensor))
        }
        try replace("w.weight_shape", DenseTensor(dtype: .i64, shape: Shape([2]), storage: ByteStorage(GGUFBytes.i64(Int64(rows)) + GGUFBytes.i64(64))))
        try replace("w.weight_packed", DenseTensor(dtype: .u8, shape: Shape([rows, 0]), storage: ByteStorage([])))
        let scale = try #require(checkpoint["w.weight_scale"])
        guard case .dense(let scales) = scale.payload else { throw TestFailure("scales are not dense") }
        try replace("w.weight_scale", DenseTensor(dtype: scales.dtype, shape: Shape([rows, 0]), storage: ByteStorage([])))
        let reason = "memory.safetensors: shape [1099511627776, 64] declares 70368744177664 elements for 64 stored bytes (at most 256 per byte, or 67108864)"
        #expect(throws: CompressedTensorsError.malformed(tensor: "w.weight", reason: reason)) {
            try CompressedTensorsLayout.collapse(checkpoint, file: "memory.safetensors")
        }
    }
}
