#!/usr/bin/env python3
"""Write a random-weight checkpoint in the LLaDA, Dream or SDAR layout, for speed benchmarks.

Quality does not matter here, only shape: the weights are drawn from N(0, 0.02) (norms are 1),
seeded, and the tokenizer is the bundled model's (models/ouro-code-tiny, 8192 tokens), so the
engine and a PyTorch reference can load the same files.

  python3 random_checkpoint.py --layout dream --out /tmp/dream-32m
      hidden 512, 8 layers, 8/2 heads, FFN 1536: 32.6M parameters
  python3 random_checkpoint.py --layout llada --out /tmp/llada-16m
      d_model 384, 6 layers, 6 heads, MLP 1024: 16.9M parameters
  python3 random_checkpoint.py --layout sdar --out /tmp/sdar-16m
      the LLaDA shape above in SDAR's Qwen3 layout (per-head q/k norms, 6/2 heads of 64),
      block size 4: 15.7M parameters

Any size can be given with --hidden/--layers/--heads/--kv-heads/--ffn. Needs numpy and
safetensors.
"""

import argparse
import json
import pathlib
import shutil

import numpy as np
from safetensors.numpy import save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOKENIZER = ROOT / "models" / "ouro-code-tiny" / "tokenizer.json"
VOCAB, EOS, PAD, MASK = 8192, 0, 1, 2

SHAPES = {
    "dream": dict(hidden=512, layers=8, heads=8, kv_heads=2, ffn=1536, positions=2048),
    "llada": dict(hidden=384, layers=6, heads=6, kv_heads=6, ffn=1024, positions=2048),
    "sdar": dict(hidden=384, layers=6, heads=6, kv_heads=2, ffn=1024, positions=2048),
}


def tensors(layout, s, rng):
    def w(*shape):
        return (0.02 * rng.standard_normal(shape)).astype(np.float32)

    def ones(n):
        return np.ones(n, dtype=np.float32)

    h, hd = s["hidden"], s["hidden"] // s["heads"]
    kv = s["kv_heads"] * hd
    out = {}
    if layout == "sdar":
        out["model.embed_tokens.weight"] = w(VOCAB, h)
        for i in range(s["layers"]):
            p = f"model.layers.{i}."
            out[p + "input_layernorm.weight"] = ones(h)
            out[p + "post_attention_layernorm.weight"] = ones(h)
            out[p + "self_attn.q_norm.weight"] = ones(hd)
            out[p + "self_attn.k_norm.weight"] = ones(hd)
            for name, rows in [("q", h), ("k", kv), ("v", kv)]:
                out[p + f"self_attn.{name}_proj.weight"] = w(rows, h)
            out[p + "self_attn.o_proj.weight"] = w(h, h)
            out[p + "mlp.gate_proj.weight"] = w(s["ffn"], h)
            out[p + "mlp.up_proj.weight"] = w(s["ffn"], h)
            out[p + "mlp.down_proj.weight"] = w(h, s["ffn"])
        out["model.norm.weight"] = ones(h)
        out["lm_head.weight"] = w(VOCAB, h)
    elif layout == "dream":
        out["model.embed_tokens.weight"] = w(VOCAB, h)
        for i in range(s["layers"]):
            p = f"model.layers.{i}."
            out[p + "input_layernorm.weight"] = ones(h)
            out[p + "post_attention_layernorm.weight"] = ones(h)
            for name, rows in [("q", h), ("k", kv), ("v", kv)]:
                out[p + f"self_attn.{name}_proj.weight"] = w(rows, h)
                out[p + f"self_attn.{name}_proj.bias"] = w(rows)
            out[p + "self_attn.o_proj.weight"] = w(h, h)
            out[p + "mlp.gate_proj.weight"] = w(s["ffn"], h)
            out[p + "mlp.up_proj.weight"] = w(s["ffn"], h)
            out[p + "mlp.down_proj.weight"] = w(h, s["ffn"])
        out["model.norm.weight"] = ones(h)
        out["lm_head.weight"] = w(VOCAB, h)
    else:
        t = "model.transformer."
        out[t + "wte.weight"] = w(VOCAB, h)
        for i in range(s["layers"]):
            p = f"{t}blocks.{i}."
            out[p + "attn_norm.weight"] = ones(h)
            out[p + "ff_norm.weight"] = ones(h)
            out[p + "q_proj.weight"] = w(h, h)
            out[p + "k_proj.weight"] = w(kv, h)
            out[p + "v_proj.weight"] = w(kv, h)
            out[p + "attn_out.weight"] = w(h, h)
            out[p + "ff_proj.weight"] = w(s["ffn"], h)
            out[p + "up_proj.weight"] = w(s["ffn"], h)
            out[p + "ff_out.weight"] = w(h, s["ffn"])
        out[t + "ln_f.weight"] = ones(h)
        out[t + "ff_out.weight"] = w(VOCAB, h)
    return out


def config(layout, s):
    if layout == "sdar":
        return {
            "architectures": ["SDARForCausalLM"], "model_type": "sdar",
            "hidden_size": s["hidden"], "intermediate_size": s["ffn"],
            "num_hidden_layers": s["layers"], "num_attention_heads": s["heads"],
            "num_key_value_heads": s["kv_heads"], "head_dim": s["hidden"] // s["heads"],
            "vocab_size": VOCAB, "max_position_embeddings": s["positions"],
            "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": False,
            "hidden_act": "silu", "attention_bias": False, "block_size": 4,
            "mask_token_id": MASK, "pad_token_id": PAD, "eos_token_id": EOS, "bos_token_id": EOS,
            "torch_dtype": "float32",
        }
    if layout == "dream":
        return {
            "architectures": ["DreamModel"], "model_type": "Dream",
            "hidden_size": s["hidden"], "intermediate_size": s["ffn"],
            "num_hidden_layers": s["layers"], "num_attention_heads": s["heads"],
            "num_key_value_heads": s["kv_heads"], "vocab_size": VOCAB,
            "max_position_embeddings": s["positions"], "rope_theta": 10000.0,
            "rms_norm_eps": 1e-6, "tie_word_embeddings": False, "hidden_act": "silu",
            "mask_token_id": MASK, "pad_token_id": PAD, "eos_token_id": EOS, "bos_token_id": EOS,
            "torch_dtype": "float32",
        }
    return {
        "architectures": ["LLaDAModelLM"], "model_type": "llada",
        "d_model": s["hidden"], "n_heads": s["heads"], "n_kv_heads": s["kv_heads"],
        "n_layers": s["layers"], "mlp_hidden_size": s["ffn"], "vocab_size": VOCAB,
        "embedding_size": VOCAB, "max_sequence_length": s["positions"], "rope": True,
        "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "block_type": "llama",
        "include_bias": False, "include_qkv_bias": False, "weight_tying": False,
        "mask_token_id": MASK, "eos_token_id": EOS, "pad_token_id": PAD,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layout", choices=sorted(SHAPES), required=True)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    for key in ["hidden", "layers", "heads", "kv_heads", "ffn", "positions"]:
        ap.add_argument("--" + key.replace("_", "-"), type=int)
    args = ap.parse_args()
    shape = dict(SHAPES[args.layout])
    for key in shape:
        if getattr(args, key) is not None:
            shape[key] = getattr(args, key)
    weights = tensors(args.layout, shape, np.random.default_rng(args.seed))
    args.out.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(args.out / "model.safetensors"), metadata={"format": "pt"})
    (args.out / "config.json").write_text(json.dumps(config(args.layout, shape), indent=2) + "\n")
    (args.out / "generation_config.json").write_text("{}\n")
    shutil.copy(TOKENIZER, args.out / "tokenizer.json")
    params = sum(v.size for v in weights.values())
    print(f"{args.out}: {args.layout} layout, {params / 1e6:.1f}M parameters")


if __name__ == "__main__":
    main()
