import Testing
import CheckpointFormats
@testable import ModelPress

@Suite("llama-quantize metadata rules")
struct LlamaQuantizeMetadataTests {
    @Test("split keys removed exactly, strings cut at NUL, version and file type appended last")
    func copiedKeys() {
        let input: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string("llama")),
            ("general.file_type", .uint32(0)),
            ("split.no", .uint16(0)), ("split.count", .uint16(2)), ("split.tensors.count", .int32(9)),
            ("split.foo", .string("kept")),
            ("general.name", .string("pico\0tail")),
            ("tokenizer.ggml.tokens", .array(elementType: .string, values: [.string("a\0b"), .string("c")])),
        ]
        let out = LlamaQuantizeMetadata.update(input, fileType: 15, importance: nil, importancePath: nil)
        #expect(out.map(\.key) == ["general.architecture", "split.foo", "general.name", "tokenizer.ggml.tokens",
                                   "general.quantization_version", "general.file_type"])
        #expect(out[2].value == .string("pico"))
        #expect(out[3].value == .array(elementType: .string, values: [.string("a"), .string("c")]))
        #expect(out[4].value == .uint32(2) && out[5].value == .uint32(15))
    }

    @Test("imatrix keys: strings at most 127 bytes cut at a whole character; chunks_count only when positive")
    func imatrixKeys() {
        let longPath = String(repeating: "é", count: 70)          // 140 bytes; 63 characters fit in 127 bytes
        let withChunks = ImportanceMatrix(entries: [("w", [1])], datasets: ["wiki"], chunkCount: 4)
        let out = LlamaQuantizeMetadata.update([], fileType: 15, importance: withChunks, importancePath: longPath)
        #expect(out.map(\.key) == ["general.quantization_version", "general.file_type", "quantize.imatrix.file",
                                   "quantize.imatrix.dataset", "quantize.imatrix.entries_count", "quantize.imatrix.chunks_count"])
        #expect(out[2].value == .string(String(repeating: "é", count: 63)))
        #expect(out[4].value == .uint32(1) && out[5].value == .uint32(4))
        let noChunks = ImportanceMatrix(entries: [("w", [1])], datasets: [], chunkCount: 0)
        let keys = LlamaQuantizeMetadata.update([], fileType: 15, importance: noChunks, importancePath: "i.dat").map(\.key)
        #expect(keys == ["general.quantization_version", "general.file_type", "quantize.imatrix.file", "quantize.imatrix.entries_count"])
    }

    @Test("tensor order: non-layer tensors by name, then blk.N by layer number and name")
    func order() throws {
        let names = ["blk.10.attn_q.weight", "output.weight", "blk.2.ffn_up.weight", "blk.2.attn_k.weight", "token_embd.weight", "blk.x.weight"]
        let t = try scalarTensor()
        let sorted = LlamaTensorOrder.sorted(names.map { TensorEntry(name: $0, tensor: t) }).map(\.name)
        #expect(sorted == ["blk.x.weight", "output.weight", "token_embd.weight", "blk.2.attn_k.weight", "blk.2.ffn_up.weight", "blk.10.attn_q.weight"])
    }

    @Test("use_more_bits picks 16 of 32 layers: 0-3, 6, 9, ..., 27, 28-31")
    func useMoreBits() {
        let chosen = (0..<32).filter { LlamaTensorTypeRules.useMoreBits($0, 32) }
        #expect(chosen == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31])
    }
}

import TensorCore
private func scalarTensor() throws -> DenseTensor { try DenseTensor(floats: [0], shape: Shape([1])) }
