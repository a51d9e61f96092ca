"""Model presets for the tiny world: Qwen2-architecture causal LMs built from a config (fp32)."""

from __future__ import annotations

from reasonlab.errors import ReasonlabError

PRESETS = {
    # ~0.9M parameters: the default base model, pretrains in minutes on 2 cores
    "tiny": dict(hidden_size=128, intermediate_size=384, num_hidden_layers=4,
                 num_attention_heads=4, num_key_value_heads=4),
    # ~0.4M parameters: the smaller student of the distillation recipes
    "mini": dict(hidden_size=96, intermediate_size=288, num_hidden_layers=3,
                 num_attention_heads=3, num_key_value_heads=3),
    # ~10M parameters: teacher models and the generation benchmark; grouped-query attention
    # (as in Qwen2.5) because decoding is bound by reading the KV cache, not by matmuls
    "small": dict(hidden_size=384, intermediate_size=1152, num_hidden_layers=6,
                  num_attention_heads=6, num_key_value_heads=2),
    # ~30k parameters: unit tests
    "test": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=2, num_key_value_heads=2),
    # ~60k parameters: unit tests of the vLLM backend (its CPU attention needs head_dim >= 32)
    "test32": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                   num_attention_heads=2, num_key_value_heads=2),
}


def build_model(tokenizer, preset: str = "tiny", max_positions: int = 512, seed: int = 0):
    """A freshly initialised `Qwen2ForCausalLM` whose special ids match `tokenizer`."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM


    if preset not in PRESETS:
        raise ReasonlabError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        rope_theta=10000.0,
        **PRESETS[preset],
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).float()
    model.generation_config = GenerationConfig(
        eos_token_id=stop_token_ids(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.eos_token_id,
        do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=256,
    )
    return model


def stop_token_ids(tokenizer) -> list[int]:
    """eos plus `</answer>` when it is a single token: generation ends after the answer."""
    ids = [tokenizer.eos_token_id]
    end = tokenizer.convert_tokens_to_ids("</answer>")
    if isinstance(end, int) and end != tokenizer.unk_token_id and end is not None:
        ids.append(end)
    return ids


def count_params(model) -> int:
    """Parameters that take part in the forward matmuls (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())
