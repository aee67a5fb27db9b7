import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// The `modelpress` binary on hostile and mistaken input: exit codes (65 bad data, 1 I/O, 64 usage),
/// one `modelpress: error:` line on stderr naming the file (and tensor), and no output or temporary
/// file left behind. Runs the built binary with `Process`.
@Suite("modelpress CLI errors")
struct CLIErrorTests {
    /// Malformed checkpoints; each writes its input into a folder and says what the error line must name.
    enum Malformed: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case tooSmall, unknownDType, byteCountMismatch, overlap, deepNesting, trailingBytes, missingShard, brokenShard, quantizedGGUF, truncatedZstd

        var testDescription: String { rawValue }

        /// Writes the input into `dir`; returns the path to pass to the CLI and the strings the error must contain.
        func write(into dir: TemporaryDirectory) throws -> (input: String, mentions: [String]) {
            let e = SafetensorsBytes.entry
            func file(_ bytes: [UInt8]) throws -> String { try dir.write(bytes, to: "in.safetensors") }
            switch self {
            case .tooSmall:
                let path = try file([1, 2, 3, 4, 5, 6, 7])
                return (path, [path, "header too small"])
            case .unknownDType:
                let path = try file(SafetensorsBytes.make(header: SafetensorsBytes.header(e("model.layers.0.mlp.weight", "F128", [1], 0, 16)),
                                                          data: SafetensorsBytes.pattern(16)))
                return (path, [path, "'model.layers.0.mlp.weight'", "F128"])
            case .byteCountMismatch:
                let path = try file(SafetensorsBytes.make(header: SafetensorsBytes.header(e("w", "F32", [2, 2], 0, 12)), data: SafetensorsBytes.pattern(12)))
                return (path, [path, "'w'", "16", "12"])
            case .overlap:
                let path = try file(SafetensorsBytes.make(header: SafetensorsBytes.header(e("a", "F32", [2], 0, 8), e("b", "F32", [2], 4, 12)),
                                                          data: SafetensorsBytes.pattern(12)))
                return (path, [path, "'b'"])
            case .deepNesting:
                let path = try file(SafetensorsBytes.make(header: String(repeating: "[", count: 100_000)))
                return (path, [path, "nesting"])
            case .trailingBytes:
                let path = try file(SafetensorsBytes.validPair() + [0])
                return (path, [path, "not fully covered"])
            case .missingShard:
                let folder = try dir.makeFolder("sharded")
                let index = try dir.write(text: ShardedFiles.index([("layer.weight", "model-00001-of-00001.safetensors")]),
                                          to: "sharded/" + ShardedSafetensors.indexFileName)
                return (folder, [index, "model-00001-of-00001.safetensors", "'layer.weight'"])
            case .quantizedGGUF:
                // A GGUF whose modelpress.quantization keys describe 4-bit codes, but the codes tensor is F32.
                let path = dir.url("in.gguf"), name = "blk.0.attn_q.weight"
                let keys: [(key: String, value: GGUFValue)] = [
                    ("general.architecture", .string("llama")), (GGUFQuantizedLayout.key(name, .scheme), .string("int")),
                    (GGUFQuantizedLayout.key(name, .bits), .uint32(4)), (GGUFQuantizedLayout.key(name, .symmetric), .bool(true)),
                    (GGUFQuantizedLayout.key(name, .granularity), .string("tensor")),
                    (GGUFQuantizedLayout.key(name, .shape), .array(elementType: .int64, values: [.int64(2), .int64(4)])),
                ]
                let tensors = [GGUFWriter.PlannedTensor(name: name, typeID: 0, shape: Shape([2, 4]), byteCount: 32),
                               GGUFWriter.PlannedTensor(name: name + ".scale", typeID: 0, shape: Shape([1]), byteCount: 4)]
                try GGUFWriter.write(to: path, metadata: keys, tensors: tensors) { ByteStorage([UInt8](repeating: 0, count: tensors[$0].byteCount)) }
                return (path, [path, "'\(name)'", "expected I8"])
            case .truncatedZstd:
                let inner = try dir.write(SafetensorsBytes.validPair(), to: "inner.safetensors")
                let path = dir.url("in.safetensors.zst")
                try ZstdCheckpoint.write(to: path, threadCount: 1) { target in
                    try FileManager.default.copyItem(atPath: inner, toPath: target)
                }
                try FileManager.default.removeItem(atPath: inner)
                let bytes = try TemporaryDirectory.read(path)
                try dir.write(Array(bytes.prefix(bytes.count - 40)), to: "in.safetensors.zst")
                return (path, [path, "truncated"])
            case .brokenShard:
                let folder = try dir.makeFolder("sharded")
                try dir.write(SafetensorsBytes.make(header: SafetensorsBytes.header(e("layer.weight", "F32", [4], 4, 20)), data: SafetensorsBytes.pattern(20)),
                              to: "sharded/model-00001-of-00001.safetensors")
                try dir.write(text: ShardedFiles.index([("layer.weight", "model-00001-of-00001.safetensors")]),
                              to: "sharded/" + ShardedSafetensors.indexFileName)
                return (folder, [folder + "/model-00001-of-00001.safetensors", "'layer.weight'"])
            }
        }
    }

    /// Exactly one line on stderr, starting `modelpress: error:` and containing every string of `mentions`.
    private func expectOneErrorLine(_ result: CommandLineRunner.Result, mentioning mentions: [String],
                                    sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.errorLines.count == 1, "stderr: \(result.standardError)", sourceLocation: sourceLocation)
        #expect(result.standardError.hasSuffix("\n"), sourceLocation: sourceLocation)
        let line = result.errorLines.first ?? ""
        #expect(line.hasPrefix("modelpress: error: "), "\(line)", sourceLocation: sourceLocation)
        for m in mentions {
            #expect(line.contains(m), "error line does not name \(m): \(line)", sourceLocation: sourceLocation)
        }
    }

    // MARK: Bad data: exit 65

    @Test("a damaged frame in a .zst file exits 65 naming the tensor, for decompress, convert and compress")
    func damagedZstdFrame() throws {
        let dir = try TemporaryDirectory(prefix: "cli-zst")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let input = dir.url("m.safetensors.zst")
        let made = try CommandLineRunner.run(["convert", root.appendingPathComponent("TestModels/pico-llama-f32").path, "-o", input])
        #expect(made.status == 0, "\(made)")
        var bytes = try TemporaryDirectory.read(input)
        bytes[bytes.count / 2] ^= 0xFF
        try dir.write(bytes, to: "m.safetensors.zst")
        let recipe = try dir.write(text: "quantize.int bits=8\n", to: "r.recipe")
        for arguments in [["decompress", input, "-o", dir.url("out.safetensors")], ["convert", input, "-o", dir.url("out.gguf")],
                          ["compress", input, "--recipe", recipe, "-o", dir.url("out.safetensors")]] {
            let result = try CommandLineRunner.run(arguments)
            #expect(!result.crashed && result.status == 65, "\(result)")
            expectOneErrorLine(result, mentioning: [input, "tensor '"])
        }
        #expect(try dir.entries().filter { $0.hasPrefix("out") || $0.contains("modelpress-tmp") }.isEmpty)
    }

    @Test("inspect on malformed input exits 65 with one error line naming the file", arguments: Malformed.allCases)
    func inspectMalformed(_ input: Malformed) throws {
        let dir = try TemporaryDirectory(prefix: "cli-inspect")
        let (path, mentions) = try input.write(into: dir)
        for json in [false, true] {
            let result = try CommandLineRunner.run(["inspect", path] + (json ? ["--json"] : []))
            #expect(!result.crashed, "\(result)")
            #expect(result.status == 65, "\(result)")
            #expect(result.standardOutput.isEmpty)
            expectOneErrorLine(result, mentioning: mentions)
        }
    }

    @Test("convert on malformed input exits 65 and leaves no output and no temporary file", arguments: Malformed.allCases)
    func convertMalformed(_ input: Malformed) throws {
        let dir = try TemporaryDirectory(prefix: "cli-convert")
        let (path, mentions) = try input.write(into: dir)
        let before = try dir.entries()
        for (name, extra) in [("out.safetensors", []), ("out.safetensors", ["--dtype", "bf16"]), ("out.gguf", []), ("out.gguf", ["--dtype", "f16"])] {
            let output = dir.url(name)
            let result = try CommandLineRunner.run(["convert", path, "-o", output] + extra)
            #expect(!result.crashed, "\(result)")
            #expect(result.status == 65, "\(result)")
            #expect(result.standardOutput.isEmpty)
            expectOneErrorLine(result, mentioning: mentions)
            #expect(!FileManager.default.fileExists(atPath: output))
            #expect(try dir.entries() == before, "no .\(name).modelpress-tmp-* or other file is left")
        }
    }

    @Test("a failed convert leaves an existing output file untouched")
    func convertKeepsExistingOutput() throws {
        let dir = try TemporaryDirectory(prefix: "cli-keep")
        let (path, _) = try Malformed.unknownDType.write(into: dir)
        let output = try dir.write(text: "previous contents", to: "out.safetensors")
        let result = try CommandLineRunner.run(["convert", path, "-o", output])
        #expect(result.status == 65, "\(result)")
        #expect(try TemporaryDirectory.read(output) == Array("previous contents".utf8))
        #expect(try dir.entries() == ["in.safetensors", "out.safetensors"])
    }

    @Test("a tensor name with a newline still gives a single error line")
    func newlineInTensorName() throws {
        let dir = try TemporaryDirectory(prefix: "cli-newline")
        let path = try dir.write(SafetensorsBytes.make(header: SafetensorsBytes.header(SafetensorsBytes.entry("evil\nname", "F128", [1], 0, 16)),
                                                       data: SafetensorsBytes.pattern(16)), to: "in.safetensors")
        let result = try CommandLineRunner.run(["inspect", path])
        #expect(result.status == 65, "\(result)")
        expectOneErrorLine(result, mentioning: [path])
    }

    @Test("convert refuses to write over a shard of its sharded input")
    func outputIsInputShard() throws {
        let dir = try TemporaryDirectory(prefix: "cli-shard-same")
        try ShardedFiles.writeTwoShards(in: dir)
        let shard = dir.url("model-00001-of-00002.safetensors")
        let original = try TemporaryDirectory.read(shard)
        let result = try CommandLineRunner.run(["convert", dir.path, "-o", shard, "--dtype", "bf16"])
        #expect(result.status == 64, "\(result)")
        #expect(try TemporaryDirectory.read(shard) == original, "the input shard was replaced")
    }

    // MARK: I/O: exit 1

    @Test("a missing input exits 1 and names the path")
    func missingInput() throws {
        let dir = try TemporaryDirectory(prefix: "cli-missing")
        let path = dir.url("nope.safetensors")
        let inspect = try CommandLineRunner.run(["inspect", path])
        #expect(inspect.status == 1, "\(inspect)")
        expectOneErrorLine(inspect, mentioning: [path])

        let output = dir.url("out.safetensors")
        let convert = try CommandLineRunner.run(["convert", path, "-o", output, "--dtype", "f16"])
        #expect(convert.status == 1, "\(convert)")
        expectOneErrorLine(convert, mentioning: [path])
        #expect(try dir.entries().isEmpty)
    }

    @Test("an output folder that does not exist exits 1 and creates nothing")
    func outputFolderMissing() throws {
        let dir = try TemporaryDirectory(prefix: "cli-nofolder")
        let input = try dir.write(SafetensorsBytes.validPair(), to: "in.safetensors")
        let result = try CommandLineRunner.run(["convert", input, "-o", dir.url("missing/out.safetensors")])
        #expect(result.status == 1, "\(result)")
        expectOneErrorLine(result, mentioning: [dir.url("missing/out.safetensors")])
        #expect(try dir.entries() == ["in.safetensors"])
    }

    // MARK: Usage: exit 64

    @Test("a bad --dtype exits 64 and writes nothing", arguments: ["f99", "u8", "F8_E4M3", "int4", ""])
    func badDType(_ dtype: String) throws {
        let dir = try TemporaryDirectory(prefix: "cli-dtype")
        let input = try dir.write(SafetensorsBytes.validPair(), to: "in.safetensors")
        let result = try CommandLineRunner.run(["convert", input, "-o", dir.url("out.safetensors"), "--dtype", dtype])
        #expect(result.status == 64, "\(result)")
        expectOneErrorLine(result, mentioning: ["--dtype"])
        #expect(try dir.entries() == ["in.safetensors"])
    }

    @Test("an unsupported output extension exits 64 and writes nothing", arguments: ["out.bin", "out.pt", "out.json", "out"])
    func badExtension(_ name: String) throws {
        let dir = try TemporaryDirectory(prefix: "cli-ext")
        let input = try dir.write(SafetensorsBytes.validPair(), to: "in.safetensors")
        let result = try CommandLineRunner.run(["convert", input, "-o", dir.url(name)])
        #expect(result.status == 64, "\(result)")
        expectOneErrorLine(result, mentioning: [dir.url(name)])
        #expect(try dir.entries() == ["in.safetensors"])
    }

    @Test("output path equal to the input exits 64 and leaves the input byte-identical")
    func outputIsInput() throws {
        let dir = try TemporaryDirectory(prefix: "cli-same")
        let original = SafetensorsBytes.validPair()
        let input = try dir.write(original, to: "in.safetensors")
        for (output, extra) in [(input, [String]()), (input, ["--dtype", "bf16"]), (dir.path + "/./in.safetensors", ["--dtype", "f16"])] {
            let result = try CommandLineRunner.run(["convert", input, "-o", output] + extra)
            #expect(result.status == 64, "\(result)")
            expectOneErrorLine(result, mentioning: ["overwrite the input"])
            #expect(try TemporaryDirectory.read(input) == original)
            #expect(try dir.entries() == ["in.safetensors"])
        }
        // A relative spelling, from the folder itself.
        let relative = try CommandLineRunner.run(["convert", "in.safetensors", "-o", "./in.safetensors"], currentDirectory: dir.path)
        #expect(relative.status == 64, "\(relative)")
        #expect(try TemporaryDirectory.read(input) == original)
        #expect(try dir.entries() == ["in.safetensors"])
    }

    @Test("missing arguments and unknown options exit 64")
    func argumentErrors() throws {
        let dir = try TemporaryDirectory(prefix: "cli-args")
        let input = try dir.write(SafetensorsBytes.validPair(), to: "in.safetensors")
        for arguments in [["convert", input], ["inspect"], ["inspect", input, "--frobnicate"], ["no-such-command"]] {
            let result = try CommandLineRunner.run(arguments)
            #expect(result.status == 64, "\(arguments): \(result)")
            #expect(!result.standardError.isEmpty)
        }
        #expect(try dir.entries() == ["in.safetensors"])
    }

    // MARK: Happy path

    @Test("convert --dtype bf16, then inspect --json shows BF16 dtypes and the right totals")
    func convertToBF16() throws {
        let dir = try TemporaryDirectory(prefix: "cli-ok")
        let input = dir.url("in.safetensors")
        let w: [Float] = [1, -2.5, 0.5, 3, 0, 0.15625]
        let b: [Float] = [0.25, -1, 2]
        let ids: [Int64] = [7, -1]
        let tensors: [String: DenseTensor] = [
            "w": try DenseTensor(floats: w, shape: Shape([2, 3])),
            "b": try DenseTensor(floats: b, shape: Shape([3])),
            "ids": try DenseTensor(dtype: .i64, shape: Shape([2]), storage: ByteStorage(ids.withUnsafeBytes { [UInt8]($0) })),
        ]
        let specs: [(String, DType, [Int])] = [("w", .f32, [2, 3]), ("b", .f32, [3]), ("ids", .i64, [2])]
        let planned = specs.map {
            SafetensorsWriter.PlannedTensor(name: $0.0, dtype: $0.1, shape: Shape($0.2))
        }
        try SafetensorsWriter.write(to: input, metadata: [("format", "pt")], tensors: planned) { tensors[planned[$0].name]! }
        let inputBytes = try TemporaryDirectory.read(input)

        let output = dir.url("out.safetensors")
        let convert = try CommandLineRunner.run(["convert", input, "-o", output, "--dtype", "bf16"])
        #expect(convert.status == 0, "\(convert)")
        #expect(convert.standardError.isEmpty)
        #expect(convert.standardOutput.contains(output) && convert.standardOutput.contains("34 bytes"), "\(convert)")
        #expect(try dir.entries() == ["in.safetensors", "out.safetensors"])
        #expect(try TemporaryDirectory.read(input) == inputBytes)

        let inspect = try CommandLineRunner.run(["inspect", output, "--json"])
        #expect(inspect.status == 0, "\(inspect)")
        let json = try JSONParser.parse(Array(inspect.standardOutput.utf8))
        let rows = try #require(json["tensors"]?.arrayElements)
        #expect(rows.compactMap { $0["name"]?.stringValue } == ["w", "b", "ids"])
        #expect(rows.compactMap { $0["dtype"]?.stringValue } == ["BF16", "BF16", "I64"])
        #expect(rows.map { $0["shape"] } == [.array([.number("2"), .number("3")]), .array([.number("3")]), .array([.number("2")])])
        #expect(rows.compactMap { $0["bytes"] } == [.number("12"), .number("6"), .number("16")])
        #expect(json["totals"] == .object([("tensors", .number("3")), ("parameters", .number("11")), ("bytes", .number("34"))]))
        #expect(json["metadata"] == .object([("format", .string("pt"))]))
        #expect(json["format"] == .string("safetensors"))

        // The values survive (all of them are exact in bf16), and the non-float tensor is copied.
        let converted = try SafetensorsReader.open(path: output)
        func dense(_ name: String) throws -> DenseTensor { try denseTensor(converted, name) }
        #expect(try dense("w").floats() == w)
        #expect(try dense("b").floats() == b)
        #expect(try dense("ids").storage.array == ids.withUnsafeBytes { [UInt8]($0) })

        let table = try CommandLineRunner.run(["inspect", output])
        #expect(table.status == 0, "\(table)")
        #expect(table.standardOutput.contains("3 tensors, 11 parameters, 34 bytes"))
    }

    @Test("convert reads a sharded folder and writes one file")
    func convertSharded() throws {
        let dir = try TemporaryDirectory(prefix: "cli-sharded")
        let folder = try TemporaryDirectory(prefix: "cli-sharded-in")
        try ShardedFiles.writeTwoShards(in: folder)
        let output = dir.url("merged.safetensors")
        let result = try CommandLineRunner.run(["convert", folder.path, "-o", output, "--dtype", "f32"])
        #expect(result.status == 0, "\(result)")
        let merged = try SafetensorsReader.open(path: output)
        #expect(merged.entries.map(\.name) == ["a", "b", "c"])
        #expect(merged.byteCount == 36)
        #expect(try dir.entries() == ["merged.safetensors"])
    }
}
