import TensorCore
import CheckpointFormats

/// What `modelpress inspect` shows: one row per tensor (name, encoding, shape, parameters, bytes),
/// totals and metadata, rendered as an aligned text table or as JSON.
public struct CheckpointSummary: Sendable {
    public struct Row: Sendable, Equatable {
        public let name: String
        public let encoding: String
        public let shape: Shape
        public let parameterCount: Int
        public let byteCount: Int
    }

    public let path: String
    public let format: CheckpointFormat
    public let rows: [Row]
    public let metadata: [MetadataEntry]

    public var parameterCount: Int { rows.reduce(0) { $0 + $1.parameterCount } }
    public var byteCount: Int { rows.reduce(0) { $0 + $1.byteCount } }

    /// Opens `path` and summarizes it.
    public init(path: String) throws {
        let (format, _) = try CheckpointFormat.detect(path: path)
        if format == .zstd, let header = try ZstdCheckpoint.denseSafetensorsHeader(path: path) {
            // Only the header's frames are decoded.
            self.init(path: path, format: format, rows: header.tensors.map {
                Row(name: $0.name, encoding: $0.dtype.rawValue, shape: $0.shape, parameterCount: $0.shape.elementCount, byteCount: $0.dataRange.count)
            }, metadata: header.metadata.map { MetadataEntry(key: $0.key, value: .string($0.value)) })
            return
        }
        let checkpoint = try CheckpointReader.open(path: path)
        self.init(path: path, format: format, checkpoint: checkpoint)
    }

    public init(path: String, format: CheckpointFormat, checkpoint: Checkpoint) {
        self.init(path: path, format: format, rows: checkpoint.entries.map {
            Row(name: $0.name, encoding: $0.encodingName, shape: $0.shape, parameterCount: $0.elementCount, byteCount: $0.byteCount(in: format))
        }, metadata: checkpoint.metadata)
    }

    init(path: String, format: CheckpointFormat, rows: [Row], metadata: [MetadataEntry]) {
        self.path = path
        self.format = format
        self.rows = rows
        self.metadata = metadata
    }

    /// An aligned table, then totals, then metadata.
    public func renderTable() -> String {
        let header = ["name", "dtype", "shape", "parameters", "bytes"]
        let cells = rows.map { [$0.name, $0.encoding, $0.shape.description, String($0.parameterCount), String($0.byteCount)] }
        var out = TextTable(header: header, rows: cells, rightAligned: [3, 4]).render()
        out += "\n\(rows.count) tensors, \(parameterCount) parameters, \(byteCount) bytes (\(ByteCountFormatting.human(byteCount))), \(format)\n"
        if !metadata.isEmpty {
            out += "\nmetadata:\n"
            for m in metadata { out += "  \(m.key) = \(m.value)\n" }
        }
        return out
    }

    /// The summary as JSON: `{file, format, tensors: [{name, dtype, shape, parameters, bytes}],
    /// totals: {tensors, parameters, bytes}, metadata: {key: value}}`.
    public func renderJSON() -> String {
        let tensors: [JSONValue] = rows.map {
            .object([("name", .string($0.name)), ("dtype", .string($0.encoding)),
                     ("shape", .array($0.shape.dimensions.map { .integer($0) })),
                     ("parameters", .integer($0.parameterCount)), ("bytes", .integer($0.byteCount))])
        }
        let value: JSONValue = .object([
            ("file", .string(path)),
            ("format", .string(format.rawValue)),
            ("tensors", .array(tensors)),
            ("totals", .object([("tensors", .integer(rows.count)), ("parameters", .integer(parameterCount)), ("bytes", .integer(byteCount))])),
            ("metadata", .object(metadata.map { ($0.key, .string($0.value.description)) })),
        ])
        return JSONWriter.pretty(value)
    }
}
