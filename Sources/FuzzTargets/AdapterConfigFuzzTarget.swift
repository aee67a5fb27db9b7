import CheckpointFormats

/// A PEFT `adapter_config.json`, then the rank, alpha and scaling of a few llama module names
/// (which compiles and matches the `rank_pattern` / `alpha_pattern` regular expressions).
struct AdapterConfigFuzzTarget: FuzzTarget {
    let name = "adapter-config"
    let summary = "PEFT adapter_config.json, with rank_pattern and alpha_pattern matched against module names"
    static let modules = ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj", "model.embed_tokens", "lm_head"]

    func run(_ input: UnsafeRawBufferPointer) -> FuzzOutcome {
        outcome {
            let config = try LoRAConfig(json: Array(input), file: "adapter_config.json")
            for module in Self.modules {
                let (rank, alpha) = try config.rankAndAlpha(of: module)
                _ = config.scaling(rank: rank, alpha: alpha)
            }
        }
    }
}
