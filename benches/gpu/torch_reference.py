#!/usr/bin/env python3
"""PyTorch reference for the GPU speed table: the same architectures through transformers'
layers, run bidirectionally (an all-visible 4-D mask), in the published semi-autoregressive
loop with a fixed count of tokens committed per step (LLaDA's low_confidence), and the block
caches of Fast-dLLM (prefix: later steps of a block run x[block_start:] over the cached keys
and values before it; dual: only the block, over the cached prefix and suffix).

  python3 torch_reference.py --config benches/gpu/shapes/dream-7b/config.json \\
      --device cuda --dtype bf16 --prompt 512 --gen 256 --block 32 --per-step 1,4,8 \\
      --cache none,prefix,dual --batch 1,8 --out torch.jsonl
  python3 torch_reference.py --ceilings --device cuda --out ceilings.json

Weights are random, drawn on the device (speed does not depend on them at a fixed count per
step). Each row: ms/step, tok/s, peak memory. --ceilings measures the card's copy bandwidth and
bf16 matmul rate, the two floors the table is compared with. The config is LLaDA's or Dream's
config.json; Dream maps onto Qwen2, LLaDA onto Llama (no biases, n_kv_heads = n_heads). A
shifted model (Dream) feeds one position before the block in cached steps, for its logits.
Needs torch and transformers.
"""

import argparse
import json
import pathlib
import time

import torch
from transformers import DynamicCache, LlamaConfig, LlamaModel, Qwen2Config, Qwen2Model

DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def build(config_path, device, dtype):
    cfg = json.loads(pathlib.Path(config_path).read_text())
    if cfg.get("model_type") == "llada" or "d_model" in cfg:
        config = LlamaConfig(
            vocab_size=cfg["embedding_size"], hidden_size=cfg["d_model"],
            intermediate_size=cfg["mlp_hidden_size"], num_hidden_layers=cfg["n_layers"],
            num_attention_heads=cfg["n_heads"], num_key_value_heads=cfg["n_kv_heads"],
            max_position_embeddings=cfg["max_sequence_length"], rope_theta=cfg["rope_theta"],
            rms_norm_eps=cfg["rms_norm_eps"], attention_bias=False, mlp_bias=False,
        )
        shift = False
    else:
        config = Qwen2Config(
            vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
            intermediate_size=cfg["intermediate_size"],
            num_hidden_layers=cfg["num_hidden_layers"],
            num_attention_heads=cfg["num_attention_heads"],
            num_key_value_heads=cfg["num_key_value_heads"],
            max_position_embeddings=cfg["max_position_embeddings"],
            rope_theta=cfg["rope_theta"], rms_norm_eps=cfg["rms_norm_eps"],
        )
        shift = True
    config.use_cache = True
    config._attn_implementation = "sdpa"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    with torch.device(device):
        model = (LlamaModel if not shift else Qwen2Model)(config).eval()
        head = torch.nn.Linear(config.hidden_size, config.vocab_size, bias=False)
    torch.set_default_dtype(previous)
    params = sum(p.numel() for p in model.parameters()) + head.weight.numel()
    return model, head, cfg["mask_token_id"], config.vocab_size, shift, params


def visible(batch, queries, keys, device):
    return torch.ones((batch, 1, queries, keys), dtype=torch.bool, device=device)


def forward(model, ids, start, cache, device):
    """Hidden states of ids placed at positions start.., over `cache` (None: no cache)."""
    b, n = ids.shape
    past = 0 if cache is None else cache.get_seq_length()
    pos = torch.arange(start, start + n, device=device).unsqueeze(0).expand(b, n)
    out = model(input_ids=ids, attention_mask=visible(b, n, past + n, device),
                position_ids=pos, past_key_values=cache, use_cache=cache is not None)
    return out.last_hidden_state


def keep_positions(cache, keep):
    """A cache of only the positions in `keep` (a LongTensor), layer by layer."""
    fresh = DynamicCache()
    for layer, (k, v) in enumerate(layer_kv(cache)):
        fresh.update(k[:, :, keep], v[:, :, keep], layer)
    return fresh


def truncated(cache, n):
    """The first n positions of `cache`, as views (transformers' own crop changed meaning
    between versions)."""
    fresh = DynamicCache()
    for layer, (k, v) in enumerate(layer_kv(cache)):
        fresh.update(k[:, :, :n], v[:, :, :n], layer)
    return fresh


def layer_kv(cache):
    if hasattr(cache, "layers"):
        return [(l.keys, l.values) for l in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))


def commit(x, hidden, offset, lo, hi, head, mask_id, per_step, shift):
    """Commit per_step tokens in x[:, lo:hi] from hidden rows (hidden[:, 0] is position offset)."""
    masked = x[:, lo:hi] == mask_id
    rows = torch.arange(lo, hi, device=x.device) - offset - (1 if shift else 0)
    rows = rows.clamp(min=0)
    probs = torch.softmax(head(hidden[:, rows]).float(), dim=-1)
    probs[..., mask_id] = 0
    conf, token = probs.max(dim=-1)
    conf = torch.where(masked, conf, torch.full_like(conf, -1.0))
    pick = torch.topk(conf, per_step, dim=-1).indices
    block = x[:, lo:hi]
    block.scatter_(1, pick, token.gather(1, pick))


def generate(model, head, mask_id, vocab, shift, a, per_step, cache_mode, batch, gen_seed):
    device = a.device
    ids = torch.randint(3, vocab, (batch, a.prompt), generator=gen_seed).to(device)
    x = torch.cat([ids, torch.full((batch, a.gen), mask_id, device=device)], dim=1)
    total = a.prompt + a.gen
    steps_per_block = a.block // per_step
    passes = 0
    for b in range(a.gen // a.block):
        lo, hi = a.prompt + b * a.block, a.prompt + (b + 1) * a.block
        cache = DynamicCache() if cache_mode != "none" else None
        hidden = forward(model, x, 0, cache, device)
        commit(x, hidden, 0, lo, hi, head, mask_id, per_step, shift)
        passes += 1
        start = lo - (1 if shift else 0)
        if cache_mode == "prefix":
            cache = truncated(cache, start)
        elif cache_mode == "dual":
            keep = torch.cat([torch.arange(0, start), torch.arange(hi, total)]).to(device)
            cache = keep_positions(cache, keep)
        held = None if cache is None else cache.get_seq_length()
        for _ in range(steps_per_block - 1):
            if cache_mode == "none":
                hidden = forward(model, x, 0, None, device)
                commit(x, hidden, 0, lo, hi, head, mask_id, per_step, shift)
            else:
                end = total if cache_mode == "prefix" else hi
                hidden = forward(model, x[:, start:end], start, cache, device)
                commit(x, hidden, start, lo, hi, head, mask_id, per_step, shift)
                cache = truncated(cache, held)
            passes += 1
    return passes


def time_config(model, head, mask_id, vocab, shift, a, per_step, cache_mode, batch):
    g = torch.Generator().manual_seed(0)
    for _ in range(a.warmup):
        generate(model, head, mask_id, vocab, shift, a, per_step, cache_mode, batch, g)
    sync(a.device)
    if a.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    runs = []
    for _ in range(a.reps):
        sync(a.device)
        t = time.perf_counter()
        passes = generate(model, head, mask_id, vocab, shift, a, per_step, cache_mode, batch, g)
        sync(a.device)
        runs.append((time.perf_counter() - t, passes))
    seconds = sorted(r[0] for r in runs)[len(runs) // 2]
    passes = runs[0][1]
    peak = torch.cuda.max_memory_allocated() / 1e6 if a.device.startswith("cuda") else None
    return {
        "ms_step": seconds * 1e3 / passes, "tok_s": batch * a.gen / seconds,
        "passes": passes, "peak_mb": peak,
    }


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def ceilings(device, mib, m):
    """Copy bandwidth (bytes read + written per second) and the bf16 matmul rate (m x m x m)."""
    n = mib * (1 << 20) // 2
    src = torch.empty(n, dtype=torch.bfloat16, device=device)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    sync(device)
    t = time.perf_counter()
    for _ in range(20):
        dst.copy_(src)
    sync(device)
    bandwidth = 20 * 2 * src.numel() * 2 / (time.perf_counter() - t)
    a = torch.randn(m, m, dtype=torch.bfloat16, device=device)
    b = torch.randn(m, m, dtype=torch.bfloat16, device=device)
    for _ in range(3):
        a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(20):
        a @ b
    sync(device)
    flops = 20 * 2 * m ** 3 / (time.perf_counter() - t)
    return {"bandwidth_gb_s": bandwidth / 1e9, "bf16_tflops": flops / 1e12,
            "device": torch.cuda.get_device_name() if device.startswith("cuda") else device,
            "torch": torch.__version__}


def csv(text, kind=str):
    return [kind(v) for v in text.split(",") if v]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=pathlib.Path)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=256)
    ap.add_argument("--block", type=int, default=32)
    ap.add_argument("--per-step", default="1,4,8")
    ap.add_argument("--cache", default="none,prefix,dual")
    ap.add_argument("--batch", default="1")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--ceilings", action="store_true")
    ap.add_argument("--ceilings-mib", type=int, default=2048, help="size of the copied buffer")
    ap.add_argument("--ceilings-matmul", type=int, default=8192, help="side of the matmuls")
    ap.add_argument("--out", type=pathlib.Path, required=True)
    a = ap.parse_args()
    torch.manual_seed(0)
    if a.ceilings:
        a.out.write_text(json.dumps(ceilings(a.device, a.ceilings_mib, a.ceilings_matmul)) + "\n")
        return
    if a.config is None:
        ap.error("--config is required unless --ceilings")
    model, head, mask_id, vocab, shift, params = build(a.config, a.device, DTYPES[a.dtype])
    with torch.inference_mode(), a.out.open("a") as out:
        for batch in csv(a.batch, int):
            for cache_mode in csv(a.cache):
                for per_step in csv(a.per_step, int):
                    row = {"engine": "torch", "shape": a.config.parent.name, "params": params,
                           "dtype": a.dtype, "prompt": a.prompt, "gen": a.gen,
                           "block": a.block, "per_step": per_step, "cache": cache_mode,
                           "batch": batch}
                    row.update(time_config(model, head, mask_id, vocab, shift, a, per_step,
                                           cache_mode, batch))
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
