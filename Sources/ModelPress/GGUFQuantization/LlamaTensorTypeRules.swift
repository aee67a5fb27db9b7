import TensorCore
import CheckpointFormats

/// llama-quantize's choice of a ggml type per tensor (`llama_tensor_get_type`), for dense models.
///
/// 1. A tensor is quantizable when it has ≥ 2 dims, its name ends in `weight`, it is not a
///    `*_norm.weight`, and it is none of the special tensors llama.cpp leaves alone (router, positional
///    embeddings, conv weights, ...). Others keep their type.
/// 2. `.pure` gives every quantizable tensor the base type. A preset applies the mixture rules:
///    `output.weight` (or a tied `token_embd.weight`) gets Q6_K; attn_v and ffn_down get more bits on the
///    layers where `useMoreBits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2`, counted in output
///    order (Q4_K_M, Q5_K_M: Q6_K there; Q3_K_M: attn_v Q5_K for the first two, else Q4_K; ffn_down Q5_K
///    for i < n/16, else Q4_K; attn_output Q4_K).
/// 3. Shape fallback when the row length is not a multiple of the block size (`tensor_type_fallback`):
///    Q2_K/Q3_K → Q4_0, Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, then F16 if 32 still does not divide.
///    Presets always fall back (as llama-quantize does); `.pure` falls back only when `allowFallback`.
public struct LlamaTensorTypeRules: Sendable {
    public let target: QuantizationTarget
    public let allowFallback: Bool

    /// Substrings that make a weight non-quantizable (`tensor_allows_quantization`).
    static let excludedSubstrings = [
        "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
        "position_embd", "token_types", "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj", "indexer.q_proj",
        "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
        "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight",
        "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
        "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
        "attn_rel_b.weight", ".rel_pos", ".patch_embd", ".patch_merger",
    ]

    public init(target: QuantizationTarget, allowFallback: Bool) {
        self.target = target
        self.allowFallback = allowFallback
    }

    public static func isQuantizable(name: String, shape: Shape) -> Bool {
        shape.rank >= 2 && name.hasSuffix("weight") && !name.hasSuffix("_norm.weight")
            && !name.hasPrefix("sam.") && !excludedSubstrings.contains { name.contains($0) }
    }

    static func useMoreBits(_ i: Int, _ n: Int) -> Bool {
        i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
    }

    /// The chosen type for each tensor (nil = keep as is), in the given (output) order.
    /// Throws when a `.pure` type does not fit a row and fallback is not allowed.
    public func assign(_ tensors: [(name: String, shape: Shape)]) throws -> [GGMLType?] {
        let hasOutput = tensors.contains { $0.name == "output.weight" }
        let attnVCount = tensors.filter { isAttnVLike($0.name) }.count
        let ffnDownCount = tensors.filter { $0.name.contains("ffn_down") }.count
        var attnVIndex = 0, ffnDownIndex = 0
        var result: [GGMLType?] = []
        for (name, shape) in tensors {
            guard LlamaTensorTypeRules.isQuantizable(name: name, shape: shape) else { result.append(nil); continue }
            var type = target.baseType
            if case .preset(let preset) = target {
                if name == "output.weight" || (!hasOutput && name == "token_embd.weight") {
                    type = .q6_K
                } else if isAttnVLike(name) {
                    type = attnVType(preset, attnVIndex, attnVCount)
                    attnVIndex += 1
                } else if name.contains("ffn_down") {
                    type = ffnDownType(preset, ffnDownIndex, ffnDownCount)
                    ffnDownIndex += 1
                } else if name.contains("attn_output.weight"), preset == .q3_K_M {
                    type = .q4_K
                }
            }
            result.append(try fallback(type, name: name, rowLength: shape.dimensions.last ?? 1))
        }
        return result
    }

    private func isAttnVLike(_ name: String) -> Bool {
        name.contains("attn_v.weight") || name.contains("attn_qkv.weight") || name.contains("attn_kv_b.weight")
    }

    private func attnVType(_ preset: LlamaQuantizePreset, _ i: Int, _ n: Int) -> GGMLType {
        switch preset {
        case .q3_K_M: i < 2 ? .q5_K : .q4_K
        case .q4_K_M, .q5_K_M: LlamaTensorTypeRules.useMoreBits(i, n) ? .q6_K : preset.baseType
        }
    }

    private func ffnDownType(_ preset: LlamaQuantizePreset, _ i: Int, _ n: Int) -> GGMLType {
        switch preset {
        case .q3_K_M: i < n / 16 ? .q5_K : .q4_K
        case .q4_K_M, .q5_K_M: LlamaTensorTypeRules.useMoreBits(i, n) ? .q6_K : preset.baseType
        }
    }

    private func fallback(_ type: GGMLType, name: String, rowLength: Int) throws -> GGMLType {
        if rowLength % type.blockSize == 0 { return type }
        let isPreset = if case .preset = target { true } else { false }
        guard isPreset || allowFallback else {
            throw GGMLQuantizationError.rowNotWholeBlocks(tensor: name, rowLength: rowLength, type: type.name, blockSize: type.blockSize)
        }
        let replacement: GGMLType = switch type {
        case .q2_K, .q3_K: .q4_0
        case .q4_K: .q5_0
        case .q5_K: .q5_1
        case .q6_K: .q8_0
        default: .f16
        }
        return rowLength % replacement.blockSize == 0 ? replacement : .f16
    }
}
