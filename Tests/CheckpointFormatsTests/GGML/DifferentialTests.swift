import Testing
@testable import CheckpointFormats

/// The fast (lane-parallel) quantizers against the scalar statement-by-statement ports.
@Suite("Fast paths equal the scalar reference ports")
struct DifferentialTests {
    static let codecs: [GGMLType] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    @Test("random and adversarial rows", arguments: codecs, RowKind.allCases)
    func matchesReference(type: GGMLType, kind: RowKind) throws {
        let codec = try #require(BlockCodecs.codec(for: type) as? any ReferenceQuantizing.Type)
        var rng = SplitMix64(seed: 0xD1FF ^ UInt64(type.rawValue) << 32 ^ UInt64(kind.hashValue & 0xFFFF))
        // K-quants need multiples of 256; 32·13 exercises a partial lane group in the legacy types.
        let lengths = type.blockSize == 256 ? [256, 512, 1024] : [32, 416, 256, 1024]
        for (variant, n) in lengths.enumerated() {
            let x = kind.make(n, &rng)
            let qw = makeImportance(n, variant, &rng)
            for useImportance in [false, true] {
                let importance = useImportance ? qw : nil
                let fast = quantize(codec, x, importance, reference: false)
                let slow = quantize(codec, x, importance, reference: true)
                if let report = firstMismatch(expected: slow, actual: fast, type: type, columns: n) {
                    Issue.record("\(type.name) \(kind) n=\(n)\(useImportance ? " +imatrix" : ""): \(report)")
                }
            }
        }
    }

    @Test("non-finite inputs do not trap and match the reference", arguments: codecs)
    func nonFinite(type: GGMLType) throws {
        let codec = try #require(BlockCodecs.codec(for: type) as? any ReferenceQuantizing.Type)
        var rng = SplitMix64(seed: 77)
        var x = RowKind.gaussian.make(512, &rng)
        x[3] = .nan
        x[40] = .infinity
        x[300] = -.infinity
        for useImportance in [false, true] {
            let qw = useImportance ? makeImportance(512, 0, &rng) : nil
            let fast = quantize(codec, x, qw, reference: false)
            let slow = quantize(codec, x, qw, reference: true)
            #expect(fast == slow, "\(type.name)\(useImportance ? " +imatrix" : "")")
        }
    }

    func quantize(_ codec: any ReferenceQuantizing.Type, _ x: [Float], _ qw: [Float]?, reference: Bool) -> [UInt8] {
        var out = [UInt8](repeating: 0xCD, count: codec.type.rowByteCount(elements: x.count)!)
        x.withUnsafeBufferPointer { xs in
            out.withUnsafeMutableBytes { o in
                func run(_ w: UnsafeBufferPointer<Float>?) {
                    if reference {
                        codec.quantizeRowReference(xs, importance: w, into: o)
                    } else {
                        codec.quantizeRow(xs, importance: w, into: o)
                    }
                }
                if let qw { qw.withUnsafeBufferPointer { run($0) } } else { run(nil) }
            }
        }
        return out
    }
}
