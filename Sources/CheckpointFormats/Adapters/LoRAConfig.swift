import TensorCore

/// The fields of a PEFT `adapter_config.json` that decide a LoRA merge (algorithms.md §6.1).
///
/// Per module `M` (its name in the base model, e.g. `model.layers.0.self_attn.q_proj`):
/// `r_M = rank_pattern[first matching key] ?? r`, `α_M = alpha_pattern[first matching key] ?? lora_alpha`,
/// and `scaling = α_M/√r_M` with `use_rslora`, else `α_M/r_M`. A pattern `p` matches `M` as PEFT's
/// `re.match(r"(.*\.)?(p)$", M)` does; patterns are tried in the file's key order.
public struct LoRAConfig: Sendable {
    public var rank: Int
    public var alpha: Double
    public var useRSLoRA: Bool
    public var fanInFanOut: Bool
    public var useDoRA: Bool
    public var loraBias: Bool
    /// `none`, `all` or `lora_only`: with the latter two, bias tensors in the file replace the base's.
    public var bias: String
    public var modulesToSave: [String]
    public var rankPattern: [(pattern: String, value: Int)]
    public var alphaPattern: [(pattern: String, value: Double)]

    /// PEFT types that are not LoRA and that this merge refuses by name.
    static let otherTypes = ["LOHA", "LOKR", "IA3", "ADALORA", "OFT", "BOFT", "VERA", "FOURIERFT", "HRA", "VBLORA", "BONE", "LN_TUNING", "PROMPT_TUNING", "PREFIX_TUNING", "P_TUNING", "ADAPTION_PROMPT", "POLY", "XLORA", "C3A", "RANDLORA", "SHIRA", "MISS"]

    /// Reads `adapter_config.json` (its bytes); `file` names it in errors.
    public init(json bytes: [UInt8], file: String) throws(LoRAAdapterError) {
        func fail(_ message: String) -> LoRAAdapterError { LoRAAdapterError(file: file, message: message) }
        let root: JSONValue
        do { root = try JSONParser.parse(bytes) } catch { throw fail("invalid JSON: \(error)") }
        guard let members = root.objectMembers else { throw fail("not a JSON object") }
        func value(_ key: String) -> JSONValue? { members.first { $0.key == key }?.value }
        func number(_ key: String) throws(LoRAAdapterError) -> Double? {
            guard let v = value(key), v != .null else { return nil }
            guard case .number(let text) = v, let d = Double(text), d.isFinite else { throw fail("'\(key)' must be a number, found \(v.kindName)") }
            return d
        }
        func flag(_ key: String) throws(LoRAAdapterError) -> Bool {
            guard let v = value(key), v != .null else { return false }
            guard case .bool(let b) = v else { throw fail("'\(key)' must be true or false, found \(v.kindName)") }
            return b
        }
        let type = value("peft_type")?.stringValue ?? "LORA"
        guard type == "LORA" else {
            throw fail("peft_type \(type) is not supported (merge.lora merges LoRA and DoRA adapters\(Self.otherTypes.contains(type) ? "" : "; unknown type"))")
        }
        let r = try number("r") ?? 8
        guard r == r.rounded(), r >= 1, r <= 1_048_576 else { throw fail("'r' must be a positive integer, found \(r)") }
        rank = Int(r)
        alpha = try number("lora_alpha") ?? 8
        useRSLoRA = try flag("use_rslora")
        fanInFanOut = try flag("fan_in_fan_out")
        useDoRA = try flag("use_dora")
        loraBias = try flag("lora_bias")
        bias = value("bias")?.stringValue ?? "none"
        guard ["none", "all", "lora_only"].contains(bias) else { throw fail("'bias' must be none, all or lora_only, found '\(bias)'") }
        switch value("modules_to_save") {
        case nil, .null?: modulesToSave = []
        case .array(let items)?: modulesToSave = items.compactMap(\.stringValue)
        case let other?: throw fail("'modules_to_save' must be a list, found \(other.kindName)")
        }
        rankPattern = []
        alphaPattern = []
        for (key, target) in [("rank_pattern", true), ("alpha_pattern", false)] {
            guard let v = value(key), v != .null else { continue }
            guard let entries = v.objectMembers else { throw fail("'\(key)' must be an object, found \(v.kindName)") }
            for (pattern, item) in entries {
                if let problem = RegexSafety.exponentialBacktracking(in: Self.anchored(pattern)) { throw fail("'\(key)' entry '\(pattern)' is refused: \(problem)") }
                guard case .number(let text) = item, let d = Double(text), d.isFinite else { throw fail("'\(key)' entry '\(pattern)' must be a number") }
                if target {
                    guard d == d.rounded(), d >= 1, d <= 1_048_576 else { throw fail("rank_pattern entry '\(pattern)' must be a positive integer, found \(text)") }
                    rankPattern.append((pattern, Int(d)))
                } else {
                    alphaPattern.append((pattern, d))
                }
            }
        }
        for key in ["layer_replication", "trainable_token_indices"] where value(key) != nil && value(key) != .null {
            throw fail("'\(key)' is not yet supported by merge.lora")
        }
    }

    /// The rank and alpha of module `module` (its base-model name, without `.weight`).
    public func rankAndAlpha(of module: String) throws(LoRAAdapterError) -> (rank: Int, alpha: Double) {
        var r = rank, a = alpha
        for entry in rankPattern where try Self.matches(entry.pattern, module) { r = entry.value; break }
        for entry in alphaPattern where try Self.matches(entry.pattern, module) { a = entry.value; break }
        return (r, a)
    }

    /// `α/√r` with rsLoRA, else `α/r`.
    public func scaling(rank r: Int, alpha a: Double) -> Double { useRSLoRA ? a / Double(r).squareRoot() : a / Double(r) }

    /// `(.*\.)?(p)`, matched whole: the regular expression PEFT builds from a pattern `p`.
    static func anchored(_ pattern: String) -> String { "(.*\\.)?(" + pattern + ")" }

    /// PEFT's `re.match(r"(.*\.)?(p)$", name)`.
    static func matches(_ pattern: String, _ name: String) throws(LoRAAdapterError) -> Bool {
        let regex: Regex<AnyRegexOutput>
        do { regex = try Regex(anchored(pattern)) } catch {
            throw LoRAAdapterError(file: "adapter_config.json", message: "pattern '\(pattern)' is not a valid regular expression")
        }
        return (try? regex.wholeMatch(in: name)) != nil
    }
}
