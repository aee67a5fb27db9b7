import CheckpointFormats

/// The metadata llama-quantize writes: the input's keys in order without `split.no`, `split.count` and
/// `split.tensors.count`, strings cut at their first NUL (llama.cpp copies them as C strings), then
/// `general.quantization_version = 2` and `general.file_type` (each removed first, then appended),
/// then with an imatrix `quantize.imatrix.file` and `.dataset` (at most 127 bytes, cut at a whole
/// character), `.entries_count` and, when positive, `.chunks_count`.
public enum LlamaQuantizeMetadata {
    public static let quantizationVersion: UInt32 = 2

    public static func update(_ metadata: [(key: String, value: GGUFValue)], fileType: UInt32,
                              importance: ImportanceMatrix?, importancePath: String?) -> [(key: String, value: GGUFValue)] {
        let splitKeys: Set<String> = ["split.no", "split.count", "split.tensors.count"]
        var result = metadata.filter { !splitKeys.contains($0.key) }.map { (key: $0.key, value: cutAtNUL($0.value)) }
        func set(_ key: String, _ value: GGUFValue) {
            result.removeAll { $0.key == key }
            result.append((key, value))
        }
        set("general.quantization_version", .uint32(quantizationVersion))
        set("general.file_type", .uint32(fileType))
        if let importance, let importancePath {
            set("quantize.imatrix.file", .string(prefix127(importancePath)))
            if let dataset = importance.datasets.first { set("quantize.imatrix.dataset", .string(prefix127(dataset))) }
            set("quantize.imatrix.entries_count", .uint32(UInt32(importance.names.count)))
            if let chunks = importance.chunkCount, chunks > 0 { set("quantize.imatrix.chunks_count", .uint32(UInt32(clamping: chunks))) }
        }
        return result
    }

    /// llama-quantize passes these strings through a `char[128]` (`strncpy(…, 127)`).
    static func prefix127(_ s: String) -> String {
        var out = ""
        var count = 0
        for c in s.unicodeScalars {
            let n = String(c).utf8.count
            guard count + n <= 127 else { break }
            out.unicodeScalars.append(c)
            count += n
        }
        return out
    }

    static func cutAtNUL(_ value: GGUFValue) -> GGUFValue {
        switch value {
        case .string(let s): .string(String(s.prefix { $0 != "\0" }))
        case .array(.string, let items): .array(elementType: .string, values: items.map(cutAtNUL))
        default: value
        }
    }
}

/// llama-quantize's output tensor order (`llama_model_loader::weights_map`): tensors outside
/// `blk.N.` first, sorted by name; then `blk.0.*`, `blk.1.*`, ... in layer order, sorted by name within
/// each layer.
public enum LlamaTensorOrder {
    public static func sorted(_ entries: [TensorEntry]) -> [TensorEntry] {
        entries.sorted { a, b in
            let (la, lb) = (layer(a.name), layer(b.name))
            if la != lb { return (la ?? -1) < (lb ?? -1) }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
    }

    static func layer(_ name: String) -> Int? {
        guard name.hasPrefix("blk.") else { return nil }
        let digits = name.dropFirst(4).prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, name.dropFirst(4 + digits.count).first == "." else { return nil }
        return Int(digits)
    }
}
