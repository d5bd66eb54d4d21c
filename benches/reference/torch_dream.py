#!/usr/bin/env python3
"""PyTorch reference for the engine's per-step cost: transformers' Qwen2 layers (the Dream
layout) run bidirectionally through an all-visible 4-D attention mask, in the same loop the
engine runs with a fixed count per step:

  canvas = prompt (canvas/2 tokens) + canvas/2 masks
  each step: one forward pass over the whole canvas, the output head on the masked rows only,
             softmax, and the --per-step most confident masked positions take their argmax.

Dream's logit shift (row i-1 predicts token i) is applied as the engine applies it. The prompt
ids are seeded random draws: the cost of a dense transformer does not depend on them.

  python3 torch_dream.py --model DIR --canvas 512 --threads 2 --warmup 1 --reps 1

prints one JSON line: {"engine": "torch", "canvas": 512, "steps": 64, "ms_step": ...}.
Needs torch, transformers and safetensors (from PyPI).
"""

import argparse
import json
import pathlib
import time

import torch
from safetensors.torch import load_file
from transformers import Qwen2Config, Qwen2Model


def load(model_dir):
    cfg = json.loads((model_dir / "config.json").read_text())
    config = Qwen2Config(
        vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
        intermediate_size=cfg["intermediate_size"], num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg.get("num_key_value_heads", cfg["num_attention_heads"]),
        max_position_embeddings=cfg["max_position_embeddings"], rope_theta=cfg["rope_theta"],
        rms_norm_eps=cfg["rms_norm_eps"], hidden_act="silu", use_cache=False,
        attn_implementation="sdpa",
    )
    weights = load_file(str(model_dir / "model.safetensors"))
    model = Qwen2Model(config).eval()
    body = {k.removeprefix("model."): v for k, v in weights.items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(body, strict=False)
    if [m for m in missing if "rotary" not in m] or unexpected:
        raise SystemExit(f"{model_dir}: weights do not fit Qwen2: missing {missing}, unexpected {unexpected}")
    head = torch.nn.Linear(config.hidden_size, config.vocab_size, bias=False)
    head.weight.data.copy_(weights["lm_head.weight"])
    return model, head, cfg["mask_token_id"], config.vocab_size


def generate(model, head, mask_id, vocab, canvas, per_step, generator):
    prompt_len = canvas // 2
    ids = torch.randint(3, vocab, (1, prompt_len), generator=generator)
    x = torch.cat([ids, torch.full((1, canvas - prompt_len), mask_id)], dim=1)
    visible = torch.ones((1, 1, canvas, canvas), dtype=torch.bool)
    steps = (canvas - prompt_len) // per_step
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        masked = (x[0] == mask_id).nonzero().squeeze(1)
        hidden = model(input_ids=x, attention_mask=visible).last_hidden_state[0]
        rows = (masked - 1).clamp(min=0)
        probs = torch.softmax(head(hidden[rows]), dim=-1)
        probs[:, mask_id] = 0
        conf, token = probs.max(dim=-1)
        pick = torch.topk(conf, per_step).indices
        x[0, masked[pick]] = token[pick]
        times.append((time.perf_counter() - started) * 1e3)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=pathlib.Path, required=True)
    ap.add_argument("--canvas", type=int, default=512)
    ap.add_argument("--per-step", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--check", action="store_true", help="check the mask is bidirectional, then exit")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, head, mask_id, vocab = load(args.model)
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        if args.check:
            x = torch.randint(3, vocab, (1, 16), generator=g)
            visible = torch.ones((1, 1, 16, 16), dtype=torch.bool)
            a = model(input_ids=x, attention_mask=visible).last_hidden_state[0, 0]
            x[0, -1] = (x[0, -1] + 1) % vocab
            b = model(input_ids=x, attention_mask=visible).last_hidden_state[0, 0]
            print(json.dumps({"bidirectional": bool((a - b).abs().max() > 0)}))
            return
        for _ in range(args.warmup):
            generate(model, head, mask_id, vocab, args.canvas, args.per_step, g)
        times = []
        for _ in range(args.reps):
            times += generate(model, head, mask_id, vocab, args.canvas, args.per_step, g)
    print(json.dumps({
        "engine": "torch", "torch": torch.__version__, "canvas": args.canvas,
        "steps": len(times) // args.reps, "threads": args.threads,
        "ms_step": sum(times) / len(times),
    }))


if __name__ == "__main__":
    main()
