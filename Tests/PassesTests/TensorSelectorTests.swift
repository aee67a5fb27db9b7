import Testing
@testable import Passes

@Suite("TensorSelector")
struct TensorSelectorTests {
    @Test("globs match whole names; ? is one character; * any run")
    func globs() {
        let cases: [(String, String, Bool)] = [
            ("*.mlp.*", "model.layers.0.mlp.up_proj.weight", true),
            ("*.mlp.*", "model.layers.0.self_attn.q_proj.weight", false),
            ("*embed*", "model.embed_tokens.weight", true),
            ("lm_head.weight", "lm_head.weight", true),
            ("lm_head", "lm_head.weight", false),
            ("model.layers.?.mlp.*", "model.layers.1.mlp.down_proj.weight", true),
            ("model.layers.?.mlp.*", "model.layers.10.mlp.down_proj.weight", false),
            ("*a*b*c", "xxaxxbxxc", true),
            ("*a*b*c", "xxaxxcxxb", false),
            ("", "", true),
            ("*", "", true),
        ]
        for (p, s, expected) in cases {
            #expect(TensorSelector.globMatches(Array(p.unicodeScalars), Array(s.unicodeScalars)) == expected, "\(p) ~ \(s)")
        }
    }

    @Test("targets, ignore, regexes and the default rule")
    func selection() throws {
        let linear: @Sendable (String, Int) -> Bool = { name, rank in rank >= 2 && name.hasSuffix("weight") }
        let byDefault = try TensorSelector(targets: nil, ignore: ["*embed*", "lm_head.weight"], defaultRule: linear)
        #expect(byDefault.selects(name: "model.layers.0.mlp.up_proj.weight", rank: 2))
        #expect(!byDefault.selects(name: "model.norm.weight", rank: 1))
        #expect(!byDefault.selects(name: "model.embed_tokens.weight", rank: 2))
        #expect(!byDefault.selects(name: "lm_head.weight", rank: 2))
        let regex = try TensorSelector(targets: ["re:.*\\.(q|k)_proj\\.weight"], ignore: ["re:model\\.layers\\.1\\..*"], defaultRule: linear)
        #expect(regex.selects(name: "model.layers.0.self_attn.q_proj.weight", rank: 2))
        #expect(!regex.selects(name: "model.layers.0.self_attn.v_proj.weight", rank: 2))
        #expect(!regex.selects(name: "model.layers.1.self_attn.k_proj.weight", rank: 2))
        #expect(throws: SelectorError(pattern: "re:(", message: "invalid regular expression")) {
            try TensorSelector(targets: ["re:("], ignore: [], defaultRule: linear)
        }
        // Nested repetition backtracks exponentially on a non-matching name (a hang): refused.
        let message = "regular expression refused: it repeats a group that itself repeats or alternates (nested repetition can take exponential time)"
        #expect(throws: SelectorError(pattern: "re:(.*)*x", message: message)) {
            try TensorSelector(targets: nil, ignore: ["re:(.*)*x"], defaultRule: linear)
        }
    }
}
