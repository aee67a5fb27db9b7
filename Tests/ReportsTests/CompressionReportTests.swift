import Testing
import TensorCore
import CheckpointFormats
import TestSupport
import Reports

@Suite("Compression report: JSON, CSV, Markdown, summary")
struct CompressionReportTests {
    @Test("totals: parameters, bytes, ratio = bytes_in / bytes_out, bits per weight = 8·bytes_out / parameters")
    func totals() {
        let t = ReportFixtures.twoTensors.totals
        #expect(t.parameterCount == 40 && t.inputByteCount == 96 && t.outputByteCount == 36)
        #expect(t.ratio == 96.0 / 36.0)
        #expect(t.bitsPerWeight == 7.2)
        #expect(ReportFixtures.twoTensors.tensors[0].bitsPerWeight == 5)   // 8·20 / 32, the default
        let empty = CompressionReport.Totals([])
        #expect(empty.ratio == 1 && empty.bitsPerWeight == 0 && empty.parameterCount == 0)
    }

    @Test("golden JSON for a fixed two-tensor report")
    func goldenJSON() {
        #expect(ReportFixtures.twoTensors.renderJSON() == ReportFixtures.twoTensorsJSON)
    }

    @Test("encode → decode is the identity, infinities included")
    func roundTrip() throws {
        let decoded = try CompressionReport(decoding: ReportFixtures.twoTensors.renderJSON(), file: "r.json")
        #expect(decoded == ReportFixtures.twoTensors)
        #expect(decoded.tensors[1].sqnrDecibels == .infinity)
        #expect(decoded.tensors[1].outputRelativeError == nil)

        // An all-zero original reconstructed as non-zero: relative error +∞, SQNR −∞, both written null.
        let metrics = try ErrorMetrics(original: [0, 0, 0, 0], reconstruction: [0, 1, 0, 0])
        let odd = TensorRecord(name: "zeros", shape: Shape([2, 2]), inputDType: "F32", encoding: "Q8_0",
                           inputByteCount: 16, outputByteCount: 8, metrics: metrics, outputRelativeError: .infinity)
        let irrational = ReportFixtures.record("noisy", relativeError: 0.1 / 3)
        let report = CompressionReport(version: "1", input: "a", output: "b", recipe: nil, tensors: [odd, irrational])
        let text = report.renderJSON()
        #expect(text.contains("\"relative_error\": null,\n      \"sqnr_db\": null,"))
        #expect(text.contains("\"recipe\": null,"))
        let back = try CompressionReport(decoding: text, file: "r.json")
        #expect(back == report)
        #expect(back.tensors[0].relativeError == .infinity && back.tensors[0].sqnrDecibels == -.infinity)
        #expect(back.tensors[0].outputRelativeError == .infinity && back.tensors[0].sparsity == 0.75)
        #expect(back.tensors[1].relativeError == 0.1 / 3)   // shortest round-trip text reads back bit for bit
        #expect(back.renderJSON() == text)
    }

    @Test("write(to:) then read(path:) through a file; a missing file is an I/O error")
    func fileRoundTrip() throws {
        let folder = try TemporaryDirectory(prefix: "report")
        let path = folder.url("report.json")
        try ReportFixtures.twoTensors.write(to: path)
        #expect(try CompressionReport.read(path: path) == ReportFixtures.twoTensors)
        #expect(throws: FileAccessError.self) { try CompressionReport.read(path: folder.url("absent.json")) }
    }

    @Test("CSV: header, one record per tensor, CRLF, inf for a lossless SQNR, empty missing field")
    func csv() {
        let expected = "name,shape,dtype_in,encoding,bits_per_weight,sparsity,bytes_in,bytes_out,relative_error,sqnr_db,"
            + "max_abs_error,cosine,output_relative_error\r\n"
            + "model.layers.0.mlp.down_proj.weight,4x8,BF16,int4/group:8,5.0,0.25,64,20,0.0625,24.08,0.125,0.998,0.00390625\r\n"
            + "lm_head.weight,8,F32,F16,16.0,0.0,32,16,0.0,inf,0.0,1.0,\r\n"
        #expect(ReportFixtures.twoTensors.renderCSV() == expected)
    }

    @Test("CSV quoting (RFC 4180): a name with a comma and a quote survives a parse")
    func csvQuoting() {
        let name = "attn,\"q\" proj"
        let report = ReportFixtures.report([ReportFixtures.record(name, relativeError: 0.5)], output: "o")
        let csv = report.renderCSV()
        let line = csv.split(separator: "\r\n", omittingEmptySubsequences: true)[1]
        #expect(line.hasPrefix("\"attn,\"\"q\"\" proj\",4x4,F32,Q4_K,"))
        let records = Self.parseCSV(csv)
        #expect(records.count == 2)
        #expect(records[1].count == CompressionReport.csvColumns.count)
        #expect(records[1][0] == name)
        #expect(records[1][8] == "0.5")
    }

    @Test("Markdown: totals table, then one escaped row per tensor")
    func markdown() {
        let md = ReportFixtures.twoTensors.renderMarkdown()
        #expect(md.hasPrefix("# ModelPress report\n\n- input: `models/pico.safetensors`\n- output: `out/pico.gguf`\n"))
        #expect(md.contains("| 2 | 40 | 96 (96 B) | 36 (36 B) | 2.67x | 7.200 |\n"))
        #expect(md.contains("| `model.layers.0.mlp.down_proj.weight` | [4, 8] | BF16 | int4/group:8 | 5.000 | 25.00% | 64 | 20 "
            + "| 6.250e-02 | 24.08 | 1.250e-01 | 0.998000 | 3.906e-03 |\n"))
        #expect(md.contains("| `lm_head.weight` | [8] | F32 | F16 | 16.000 | 0.00% | 32 | 16 | 0 | lossless | 0 | 1.000000 | - |\n"))
        let piped = ReportFixtures.report([ReportFixtures.record("a|b", relativeError: 0.5)], output: "o").renderMarkdown()
        #expect(piped.contains("| `a\\|b` |"))
        #expect(!piped.contains("output rel. error"))
    }

    @Test("summary: totals, then the 5 worst tensors by relative error, ties by name, exact ones left out")
    func summary() {
        let errors: [(String, Double)] = [("a", 0.01), ("b", 0.3), ("c", 0), ("d", 0.05), ("e", 0.3), ("f", 0.2),
                                          ("g", 0.001), ("h", 0.1)]
        let report = ReportFixtures.report(errors.map { ReportFixtures.record($0.0, relativeError: $0.1) }, output: "o")
        #expect(report.worstTensors(count: 5).map(\.name) == ["b", "e", "f", "h", "d"])
        let text = report.renderSummary()
        #expect(text.hasPrefix("8 tensors, 128 parameters\nbytes in:        512 (512 B)\nbytes out:       64 (64 B)\n"
            + "ratio:           8.00x\nbits per weight: 4.000\n\nworst 5 by relative error:\n"))
        let rows = text.split(separator: "\n").suffix(5).map { $0.split(separator: " ").first.map(String.init) ?? "" }
        #expect(rows == ["b", "e", "f", "h", "d"])
        #expect(text.contains("3.000e-01"))

        let exact = ReportFixtures.report([ReportFixtures.record("x", relativeError: 0)], output: "o").renderSummary()
        #expect(exact.hasSuffix("\nevery tensor is reconstructed exactly (relative error 0)\n"))
        #expect(ReportFixtures.twoTensors.renderSummary().contains("worst 1 by relative error:"))
    }

    /// A minimal RFC 4180 reader: quoted fields with doubled quotes, CRLF record ends.
    static func parseCSV(_ text: String) -> [[String]] {
        var records: [[String]] = [], field = "", record: [String] = []
        var inQuotes = false
        let chars = Array(text.unicodeScalars)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if inQuotes {
                if c == "\"" {
                    if i + 1 < chars.count && chars[i + 1] == "\"" { field.unicodeScalars.append("\""); i += 1 } else { inQuotes = false }
                } else { field.unicodeScalars.append(c) }
            } else if c == "\"" { inQuotes = true }
            else if c == "," { record.append(field); field = "" }
            else if c == "\r" && i + 1 < chars.count && chars[i + 1] == "\n" {
                record.append(field); records.append(record); field = ""; record = []; i += 1
            } else { field.unicodeScalars.append(c) }
            i += 1
        }
        return records
    }
}
