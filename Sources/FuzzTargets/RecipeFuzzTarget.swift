import CheckpointFormats
import Passes
import Recipes
import TensorCore

/// Recipe text: the lexer and parser (variables, `--set`-free), `include` (every included path
/// reads as the input itself, as `include sub/../same.recipe` would on disk), then binding against
/// a small llama-shaped manifest, which runs every pass's option reader and the tensor selectors.
struct RecipeFuzzTarget: FuzzTarget {
    let name = "recipe"
    let summary = "the recipe language (lexer, parser, include, variables) and binding against a llama manifest"

    static let manifest = CheckpointManifest(entries: [
        .init(name: "model.embed_tokens.weight", shape: Shape([512, 256]), dtype: .f32),
        .init(name: "model.layers.0.self_attn.q_proj.weight", shape: Shape([256, 256]), dtype: .f32),
        .init(name: "model.layers.0.mlp.down_proj.weight", shape: Shape([256, 512]), dtype: .bf16),
        .init(name: "model.layers.0.input_layernorm.weight", shape: Shape([256]), dtype: .f32),
        .init(name: "lm_head.weight", shape: Shape([512, 256]), dtype: .f16),
    ])

    func run(_ input: UnsafeRawBufferPointer) -> FuzzOutcome {
        let text = String(decoding: input, as: UTF8.self)
        return outcome {
            let recipe = try RecipeParser.parse(text: text, file: "fuzz/input.recipe", loader: { _ in text })
            _ = try PassRegistry.builtIn.bindRecipe(recipe, manifest: Self.manifest)
        }
    }
}
