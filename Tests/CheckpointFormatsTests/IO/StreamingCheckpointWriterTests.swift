import Foundation
import Testing
import TensorCore
import TestSupport
@testable import CheckpointFormats

@Suite("Streaming writer and tensor spool")
struct StreamingCheckpointWriterTests {
    /// One of every payload the writers store: a large dense tensor (spooled), a small one (kept in
    /// memory), an int4 tensor, a mixed-width tensor, a 2:4-sparse tensor and two tensors sharing one
    /// RPS array.
    static func checkpoint() throws -> Checkpoint {
        var rng = SeededGenerator(seed: 41)
        let big = try DenseTensor(floats: rng.gaussianFloats(count: 128 * 256), shape: Shape([128, 256]))
        let small = try DenseTensor(floats: [1, 2, 3], shape: Shape([3]))
        let int4 = CompressedTensorsLayoutTests.quantized(bits: 4, symmetric: true, granularity: .group(64), shape: Shape([256, 256]), seed: 3)
        let mixed = MixedWidthSamples.make([64, 96], widths: [2, 4, 0, 8], symmetric: false, seed: 9)
        let sparse = try SparseSamples.nOfM([128, 256], dtype: .f32, kept: 2, group: 4, seed: 5)
        let map = RandomFoldMap(seed: 7, slotCount: 512)
        let slots = rng.gaussianFloats(count: 512)
        let a = SharedTensor(shape: Shape([32, 64]), arrayName: "rps.1", map: map, offset: 0, scale: 0.5, slots: slots, sharedElementCount: 4096)
        let b = SharedTensor(shape: Shape([32, 64]), arrayName: "rps.1", map: map, offset: 2048, scale: 0.25, slots: slots, sharedElementCount: 4096)
        return try Checkpoint(entries: [
            TensorEntry(name: "embed.weight", tensor: big),
            TensorEntry(name: "norm.weight", tensor: small),
            TensorEntry(name: "q.weight", payload: .quantized(int4)),
            TensorEntry(name: "mixed.weight", payload: .quantized(mixed)),
            TensorEntry(name: "pruned.weight", payload: .dense(sparse), sparsity: .nOfM(kept: 2, group: 4)),
            TensorEntry(name: "a.weight", payload: .shared(a)),
            TensorEntry(name: "b.weight", payload: .shared(b)),
        ], metadata: [MetadataEntry(key: "note", value: .string("kept"))])
    }

    @Test("entries added in any order give the bytes of the whole-checkpoint write, safetensors and GGUF",
          arguments: [StreamingCheckpointWriter.Format.safetensors, .gguf])
    func orderDoesNotMatter(format: StreamingCheckpointWriter.Format) throws {
        let dir = try TemporaryDirectory(prefix: "streaming")
        var checkpoint = try Self.checkpoint()
        if format == .gguf {   // GGUF output keeps sparse tensors dense, without the mark
            checkpoint.replace(at: 4, with: TensorEntry(name: "pruned.weight", payload: checkpoint.entries[4].payload))
        }
        let ext = format == .gguf ? "gguf" : "safetensors"
        let whole = dir.url("whole.\(ext)"), streamed = dir.url("streamed.\(ext)")
        switch format {
        case .safetensors: try SafetensorsWriter.write(checkpoint, to: whole)
        case .gguf: try GGUFWriter.write(checkpoint, to: whole)
        }
        let writer = StreamingCheckpointWriter(format: format, names: checkpoint.entries.map(\.name), metadata: checkpoint.metadata, destination: streamed)
        for position in [6, 4, 3, 2, 1, 5, 0] { try writer.add(checkpoint.entries[position], at: position) }
        #expect(writer.spooledByteCount > 0, "the large parts went to the spool")
        try writer.write(to: streamed)
        #expect(try Data(contentsOf: URL(fileURLWithPath: whole)) == Data(contentsOf: URL(fileURLWithPath: streamed)))
        #expect(try dir.entries().sorted() == ["streamed.\(ext)", "whole.\(ext)"], "no spool file is left behind")
        // And the file reads back as the checkpoint.
        let back = try CheckpointReader.open(path: streamed)
        #expect(back.entries.map(\.name) == checkpoint.entries.map(\.name))
        for (x, y) in zip(back.entries, checkpoint.entries) {
            #expect(try x.floatValues() == y.floatValues(), "\(x.name)")
        }
    }

    @Test("the spool maps large pieces from an unlinked file and keeps small or mapped ones as they are")
    func spool() throws {
        let dir = try TemporaryDirectory(prefix: "spool")
        let spool = TensorSpool(destination: dir.url("out.safetensors"))
        let large = (0..<(TensorSpool.inMemoryLimit + 5)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let stored = try spool.store(ByteStorage(large))
        #expect(stored.isMapped && stored.array == large)
        let second = try spool.store(ByteStorage(Array(large.reversed())))
        #expect(second.array == Array(large.reversed()) && stored.array == large, "pieces do not overlap")
        #expect(spool.byteCount % MappedFile.pageSize == 0 && spool.byteCount >= 2 * large.count)
        let small = try spool.store(ByteStorage([1, 2, 3]))
        #expect(!small.isMapped && small.array == [1, 2, 3])
        #expect(try dir.entries().isEmpty, "the spool file is unlinked as soon as it is made")
        stored.releaseResidentPages()
        #expect(stored.array == large, "released pages read back from the file")
    }
}
