"""Export the latest training checkpoint as the bundled model directory models/ouro-code-tiny/.

Run from the repository root (safe while train.py is running: it reads the last complete,
atomically renamed checkpoint):

    /work/torchenv/bin/python models/ouro-code-tiny/train/export.py [--ckpt PATH] [--out DIR]

Writes config.json (the LLaDA/OLMo keys the engine's loader reads, same layout as the
tests/fixtures/diffusion/tiny-llada fixture), generation_config.json, tokenizer.json and a single
model.safetensors in float16. float16 rather than bfloat16: these weights are small in magnitude,
so f16's extra mantissa bits are free precision; the engine converts either to the run dtype.
"""

import argparse
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import LLaDA, Config  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
WORK = os.path.join(ROOT, "target", "bundled-train")
MAX_BYTES = 30 * 1000 * 1000


def llada_config(cfg):
    return {
        "architectures": ["LLaDAModelLM"],
        "model_type": "llada",
        "d_model": cfg.d_model,
        "n_heads": cfg.n_heads,
        "n_kv_heads": cfg.n_heads,
        "n_layers": cfg.n_layers,
        "mlp_hidden_size": cfg.mlp_hidden_size,
        "mlp_ratio": cfg.mlp_hidden_size // cfg.d_model,
        "vocab_size": cfg.vocab_size,
        "embedding_size": cfg.vocab_size,
        # The training window: RoPE positions past it were never seen.
        "max_sequence_length": cfg.max_sequence_length,
        "rope": True,
        "rope_theta": cfg.rope_theta,
        "rope_full_precision": True,
        "rms_norm_eps": cfg.rms_norm_eps,
        "layer_norm_type": "rms",
        "layer_norm_with_affine": True,
        "bias_for_layer_norm": False,
        "block_type": "llama",
        "activation_type": "silu",
        "include_bias": False,
        "include_qkv_bias": False,
        "weight_tying": False,
        "attention_layer_norm": False,
        "input_emb_norm": False,
        "scale_logits": False,
        "alibi": False,
        "flash_attention": False,
        "multi_query_attention": None,
        "block_group_size": 1,
        "attention_dropout": 0.0,
        "residual_dropout": 0.0,
        "embedding_dropout": 0.0,
        "init_device": "cpu",
        "init_fn": "normal",
        "init_std": cfg.init_std,
        "mask_token_id": 2,
        "eos_token_id": 0,
        "pad_token_id": 1,
        "use_cache": False,
        "precision": "fp16",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default=os.path.join(WORK, "ckpt.pt"))
    ap.add_argument("--out", default=os.path.abspath(os.path.join(HERE, "..")))
    ap.add_argument("--steps", type=int, default=64, help="recommended denoising steps")
    args = ap.parse_args()

    ck = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    cfg = Config(**ck["config"])
    model = LLaDA(cfg)
    model.load_state_dict(ck["model"])
    tensors = {}
    for name, p in model.state_dict().items():
        if not name.startswith("model."):
            continue  # the RoPE tables are rebuilt by the loader
        assert p.abs().max().item() < 6e4, f"{name} would overflow float16"
        tensors[name] = p.detach().to(torch.float16).contiguous()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "model.safetensors")
    save_file(tensors, path + ".tmp", metadata={"format": "pt", "step": str(ck["step"]),
                                                  "tokens_seen": str(ck["tokens"])})
    os.replace(path + ".tmp", path)
    size = os.path.getsize(path)
    assert size <= MAX_BYTES, f"{size} bytes is over the 30 MB budget"
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(llada_config(cfg), f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"sampler": "low_confidence", "steps": args.steps, "temperature": 0.0}, f, indent=2)
        f.write("\n")
    shutil.copyfile(os.path.join(WORK, "tokenizer.json"), os.path.join(args.out, "tokenizer.json"))
    n = sum(t.numel() for t in tensors.values())
    print(f"exported step {ck['step']} ({ck['tokens']} tokens): {n} params, {size / 1e6:.1f} MB -> {args.out}")


if __name__ == "__main__":
    main()
