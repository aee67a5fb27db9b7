import Testing
import CheckpointFormats

/// `RegexSafety`: the patterns that can backtrack exponentially are refused, everything PEFT configs
/// and recipes use in practice passes; and a hostile `adapter_config.json` is refused when read
/// (before, matching `(.*)*(.*)*(.*)*x` against one module name ran for minutes).
@Suite("Regex safety")
struct RegexSafetyTests {
    @Test(arguments: ["(.*)*x", "(a|aa)+b", "(a+)+", "((ab)*c)*", "(?:x?)*y", "(a{2,})+", "(.*\\.)?(a*)*", "((a|b))*"])
    func refused(_ pattern: String) {
        #expect(RegexSafety.exponentialBacktracking(in: pattern) != nil)
    }

    @Test(arguments: ["q_proj", "layers\\.1\\..*", ".*\\.(q|k)_proj\\.weight", "(foo)?bar", "[(*]+x", "\\(a*\\)*", "(.*\\.)?(q_proj)",
                      "model\\.layers\\.[0-9]+\\.mlp", "(ab)*c", "[|*]*", "(?<name>ab)+"])
    func allowed(_ pattern: String) {
        #expect(RegexSafety.exponentialBacktracking(in: pattern) == nil)
    }

    @Test func adapterConfigWithNestedRepetition() {
        let json = Array(#"{"r": 8, "rank_pattern": {"(.*)*(.*)*(.*)*x": 2}}"#.utf8)
        let message = "'rank_pattern' entry '(.*)*(.*)*(.*)*x' is refused: it repeats a group that itself repeats or alternates (nested repetition can take exponential time)"
        #expect(throws: LoRAAdapterError(file: "adapter_config.json", message: message)) {
            try LoRAConfig(json: json, file: "adapter_config.json")
        }
        // A pattern that closes the group PEFT wraps it in cannot smuggle the repetition past the check.
        #expect(throws: LoRAAdapterError.self) {
            try LoRAConfig(json: Array(#"{"alpha_pattern": {"a*)*(": 2}}"#.utf8), file: "adapter_config.json")
        }
    }
}
