import Testing
@testable import CheckpointFormats

/// The types with fixtures made by llama.cpp's `ggml_quantize_chunk`.
let fixtureTypes: [GGMLType] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

/// Quantizes every row of `values` (`rows × columns`) with `codec`.
func quantizeMatrix(
    _ codec: any BlockCodec.Type, _ values: [Float], rows: Int, columns: Int, importance: [Float]?
) -> [UInt8] {
    let rowBytes = codec.type.rowByteCount(elements: columns)!
    var out = [UInt8](repeating: 0xCD, count: rows * rowBytes)
    values.withUnsafeBufferPointer { x in
        out.withUnsafeMutableBytes { o in
            for r in 0..<rows {
                let row = UnsafeBufferPointer(rebasing: x[(r * columns)..<((r + 1) * columns)])
                let dst = UnsafeMutableRawBufferPointer(rebasing: o[(r * rowBytes)..<((r + 1) * rowBytes)])
                if let importance {
                    importance.withUnsafeBufferPointer { codec.quantizeRow(row, importance: $0, into: dst) }
                } else {
                    codec.quantizeRow(row, importance: nil, into: dst)
                }
            }
        }
    }
    return out
}

/// Describes the first differing block and the number of differing blocks, or nil if equal.
func firstMismatch(expected: [UInt8], actual: [UInt8], type: GGMLType, columns: Int) -> String? {
    guard expected.count == actual.count else { return "size \(actual.count) != expected \(expected.count)" }
    guard expected != actual else { return nil }
    let blockBytes = type.bytesPerBlock
    let blocksPerRow = columns / type.blockSize
    var bad: [Int] = []
    for b in 0..<(expected.count / blockBytes) {
        let range = (b * blockBytes)..<((b + 1) * blockBytes)
        if expected[range] != actual[range] { bad.append(b) }
    }
    let b = bad[0]
    let range = (b * blockBytes)..<((b + 1) * blockBytes)
    let hex = { (bytes: ArraySlice<UInt8>) in bytes.map { String($0, radix: 16).leftPadded(2) }.joined(separator: " ") }
    return """
        \(bad.count) of \(expected.count / blockBytes) blocks differ; first: row \(b / blocksPerRow), \
        block \(b % blocksPerRow)
        expected: \(hex(expected[range]))
        actual:   \(hex(actual[range]))
        """
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: Swift.max(0, width - count)) + self }
}

@Suite("Golden fixtures from llama.cpp ggml_quantize_chunk")
struct GoldenFixtureTests {
    @Test("quantize without importance matches <tensor>.<TYPE>.bin", arguments: Fixtures.tensorNames, fixtureTypes)
    func quantizeReference(tensor: String, type: GGMLType) throws {
        try check(tensor: tensor, type: type, withImportance: false)
    }

    @Test("quantize with importance matches <tensor>.<TYPE>.imatrix.bin", arguments: Fixtures.tensorNames, fixtureTypes)
    func quantizeWithImportance(tensor: String, type: GGMLType) throws {
        try check(tensor: tensor, type: type, withImportance: true)
    }

    func check(tensor: String, type: GGMLType, withImportance: Bool) throws {
        let codec = try #require(BlockCodecs.codec(for: type))
        let input = try Fixtures.input(tensor)
        // Q8_0 ignores the importance matrix, so its only fixture serves both cases.
        let suffix = withImportance && type != .q8_0 ? ".imatrix.bin" : ".bin"
        let expected = try Fixtures.bytes("\(tensor).\(type.name)\(suffix)")
        let importance = withImportance ? try Fixtures.importance(tensor) : nil
        let actual = quantizeMatrix(codec, input.values, rows: input.rows, columns: input.columns, importance: importance)
        if let report = firstMismatch(expected: expected, actual: actual, type: type, columns: input.columns) {
            Issue.record("\(tensor) \(type.name)\(withImportance ? " +imatrix" : ""): \(report)")
        }
    }
}
