/// The llama-family correspondence between Hugging Face tensor names and llama.cpp GGUF names
/// (`model.layers.N.self_attn.q_proj.weight` ↔ `blk.N.attn_q.weight`), as convert_hf_to_gguf.py
/// maps them, so statistics keyed one way apply to a checkpoint named the other way.
public enum LlamaTensorNames {
    /// Whole-name pairs (HF, GGUF).
    static let globals: [(String, String)] = [
        ("model.embed_tokens.weight", "token_embd.weight"), ("lm_head.weight", "output.weight"),
        ("model.norm.weight", "output_norm.weight"),
    ]
    /// Per-layer suffix pairs (HF after `model.layers.N.`, GGUF after `blk.N.`).
    static let layer: [(String, String)] = [
        ("self_attn.q_proj.weight", "attn_q.weight"), ("self_attn.k_proj.weight", "attn_k.weight"),
        ("self_attn.v_proj.weight", "attn_v.weight"), ("self_attn.o_proj.weight", "attn_output.weight"),
        ("mlp.gate_proj.weight", "ffn_gate.weight"), ("mlp.up_proj.weight", "ffn_up.weight"),
        ("mlp.down_proj.weight", "ffn_down.weight"), ("input_layernorm.weight", "attn_norm.weight"),
        ("post_attention_layernorm.weight", "ffn_norm.weight"),
    ]

    /// The other spelling(s) of `name` (empty when it is not a llama-family name).
    public static func aliases(of name: String) -> [String] {
        if let pair = globals.first(where: { $0.0 == name || $0.1 == name }) { return [pair.0 == name ? pair.1 : pair.0] }
        for (hfPrefix, ggufPrefix, fromHF) in [("model.layers.", "blk.", true), ("blk.", "model.layers.", false)] where name.hasPrefix(hfPrefix) {
            let rest = name.dropFirst(hfPrefix.count)
            guard let dot = rest.firstIndex(of: "."), let index = Int(rest[..<dot]) else { return [] }
            let suffix = String(rest[rest.index(after: dot)...])
            guard let pair = layer.first(where: { (fromHF ? $0.0 : $0.1) == suffix }) else { return [] }
            return ["\(ggufPrefix)\(index).\(fromHF ? pair.1 : pair.0)"]
        }
        return []
    }
}
