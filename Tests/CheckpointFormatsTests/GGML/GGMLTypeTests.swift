import Testing
@testable import CheckpointFormats

@Suite("GGMLType")
struct GGMLTypeTests {
    /// formats.md §1.5: id, name, elements per block, bytes per block.
    static let table: [(UInt32, String, Int, Int)] = [
        (0, "F32", 1, 4), (1, "F16", 1, 2), (2, "Q4_0", 32, 18), (3, "Q4_1", 32, 20), (6, "Q5_0", 32, 22),
        (7, "Q5_1", 32, 24), (8, "Q8_0", 32, 34), (9, "Q8_1", 32, 36), (10, "Q2_K", 256, 84), (11, "Q3_K", 256, 110),
        (12, "Q4_K", 256, 144), (13, "Q5_K", 256, 176), (14, "Q6_K", 256, 210), (15, "Q8_K", 256, 292),
        (16, "IQ2_XXS", 256, 66), (17, "IQ2_XS", 256, 74), (18, "IQ3_XXS", 256, 98), (19, "IQ1_S", 256, 50),
        (20, "IQ4_NL", 32, 18), (21, "IQ3_S", 256, 110), (22, "IQ2_S", 256, 82), (23, "IQ4_XS", 256, 136),
        (24, "I8", 1, 1), (25, "I16", 1, 2), (26, "I32", 1, 4), (27, "I64", 1, 8), (28, "F64", 1, 8),
        (29, "IQ1_M", 256, 56), (30, "BF16", 1, 2), (34, "TQ1_0", 256, 54), (35, "TQ2_0", 256, 66),
        (39, "MXFP4", 32, 17), (40, "NVFP4", 64, 36), (41, "Q1_0", 128, 18), (42, "Q2_0", 64, 18),
    ]

    @Test("every id valid in files, with the llama.cpp name, block size and bytes per block")
    func table() throws {
        #expect(GGMLType.allCases.count == Self.table.count)
        for (id, name, block, bytes) in Self.table {
            let type = try #require(GGMLType(rawValue: id), "id \(id)")
            #expect(type.name == name)
            #expect(type.blockSize == block, "\(name)")
            #expect(type.bytesPerBlock == bytes, "\(name)")
            #expect(GGMLType(name: name) == type)
        }
        for removed: UInt32 in [4, 5, 31, 32, 33, 36, 37, 38, 43, 1000] {
            #expect(GGMLType(rawValue: removed) == nil, "id \(removed)")
        }
    }

    @Test("rowByteCount is nil unless the row is a whole number of blocks")
    func rowByteCount() {
        #expect(GGMLType.q4_K.rowByteCount(elements: 4096) == 16 * 144)
        #expect(GGMLType.q4_K.rowByteCount(elements: 4095) == nil)
        #expect(GGMLType.q4_K.rowByteCount(elements: 128) == nil)
        #expect(GGMLType.q8_0.rowByteCount(elements: 0) == 0)
        #expect(GGMLType.q8_0.rowByteCount(elements: -32) == nil)
        #expect(GGMLType.f32.rowByteCount(elements: 7) == 28)
        #expect(GGMLType.q2_0.rowByteCount(elements: 128) == 36)
        #expect(GGMLType.f32.rowByteCount(elements: Int.max / 2) == nil)
    }

    @Test("the codec table covers exactly the implemented types")
    func codecTable() {
        let implemented: Set<GGMLType> = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]
        for type in GGMLType.allCases {
            let codec = BlockCodecs.codec(for: type)
            #expect((codec != nil) == implemented.contains(type), "\(type.name)")
            if let codec {
                let codecType = codec.type
                #expect(codecType == type)
            }
        }
        let listed = Set(BlockCodecs.all.map { codec in codec.type })
        #expect(listed == implemented)
    }
}
