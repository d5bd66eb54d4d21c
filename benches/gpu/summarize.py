#!/usr/bin/env python3
"""RESULTS.md from a run.sh output folder: the steps, the goldens and kernel checks, and the
speed table with ouroboros and the PyTorch reference side by side, each row's ratio to the
reference and to the floor, and the issue's goals. Standard library only.

  python3 summarize.py OUTDIR > OUTDIR/RESULTS.md

The floor of a pass is the larger of its weight bytes over the measured copy bandwidth and
its FLOPs over the measured bf16 matmul rate; a row's floor is the mean over its passes, which
follow the schedule (per block one full pass, then cached windows: x[block_start:] for prefix,
the block for dual).
"""

import glob
import json
import os
import sys


def read_jsonl(pattern):
    rows = []
    for path in sorted(glob.glob(pattern)):
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip().startswith("{")]
    return rows


def shape(cfg):
    if "d_model" in cfg:
        return dict(hidden=cfg["d_model"], layers=cfg["n_layers"], vocab=cfg["embedding_size"],
                    shift=False)
    return dict(hidden=cfg["hidden_size"], layers=cfg["num_hidden_layers"],
                vocab=cfg["vocab_size"], shift=True)


def floor_ms(s, params, prompt, gen, block, per_step, cache, batch, ceil):
    """Mean floor per pass over the schedule, in ms."""
    h, v = s["hidden"], s["vocab"]
    body = params - 2 * h * v  # the embedding and the head are not multiplied per token
    total = prompt + gen
    bw = ceil["bandwidth_gb_s"] * 1e9
    rate = ceil["bf16_tflops"] * 1e12
    shift = 1 if s["shift"] else 0
    times = []
    for b in range(gen // block):
        lo = prompt + b * block
        for i in range(block // per_step):
            if i == 0 or cache == "none":
                q = total
            elif cache == "prefix":
                q = total - lo + shift
            else:
                q = block + shift
            flops = batch * (2 * body * q + 2 * h * v * block + 4 * s["layers"] * h * q * total)
            weight_bytes = 2 * (body + h * v)
            times.append(max(weight_bytes / bw, flops / rate))
    return 1e3 * sum(times) / len(times)


def main():
    out = sys.argv[1]
    lines = ["# GPU results", ""]
    env = os.path.join(out, "env.txt")
    if os.path.exists(env):
        lines += ["```", open(env).read().strip(), "```", ""]
    steps = os.path.join(out, "steps.tsv")
    if os.path.exists(steps):
        lines += ["## Steps", "", "| step | status | s |", "|---|---|---:|"]
        for row in list(open(steps))[1:]:
            lines.append("| " + " | ".join(row.rstrip("\n").split("\t")) + " |")
        lines.append("")
    for name in ["goldens-f32.md", "goldens-bf16.md"]:
        path = os.path.join(out, name)
        if os.path.exists(path) and os.path.getsize(path):
            lines += [f"## {name[:-3]}", "", open(path).read().strip(), ""]
    kernels = os.path.join(out, "kernels.json")
    if os.path.exists(kernels) and os.path.getsize(kernels):
        k = json.load(open(kernels))
        lines += ["## Kernels", "", "| case | rows | vocab | dtype | token mismatches | max rel diff | kernel ms | host ms |",
                  "|---|---:|---:|---|---:|---:|---:|---:|"]
        for c in k["cases"]:
            lines.append(f"| {c['name']} | {c['rows']} | {c['vocab']} | {c['dtype']} | {c['token_mismatches']} | "
                         f"{c['max_rel_diff']:.2e} | {c['kernel_ms']:.3f} | {c['host_ms']:.3f} |")
        lines += ["", f"selection: {k['selection_mismatches']} of {k['selection_checks']} checks differ", ""]
    ceil_path = os.path.join(out, "ceilings.json")
    ceil = json.load(open(ceil_path)) if os.path.exists(ceil_path) else None
    if ceil:
        lines += ["## Ceilings", "", f"copy bandwidth {ceil['bandwidth_gb_s']:.0f} GB/s, "
                  f"bf16 matmul {ceil['bf16_tflops']:.0f} TFLOP/s ({ceil['device']}, torch {ceil['torch']})", ""]
    ours = read_jsonl(os.path.join(out, "speed-ouroboros-*.jsonl"))
    torch_rows = read_jsonl(os.path.join(out, "speed-torch.jsonl"))
    peaks = {}
    for path in glob.glob(os.path.join(out, "memory-*.txt")):
        values = [int(x) for x in open(path).read().split() if x.isdigit()]
        if values:
            peaks[os.path.basename(path)[len("memory-"):-4]] = max(values)
    lines += ["## Speed", "",
              "| shape | cache | batch | tok/step | ms/step | torch ms/step | ratio | floor ms | ×floor | tok/s | torch tok/s | GPU MB (process peak) | torch MB |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    goals = []
    for r in ours:
        name = r["model"].split(" ")[0]
        per = r["gen"] // r["steps"]
        t = next((x for x in torch_rows if x["shape"] == name and x["cache"] == r["cache"]
                  and x["batch"] == r["batch"] and x["per_step"] == per), None)
        cfg_path = os.path.join(out, f"config-{name}.json")
        fl = None
        if ceil and os.path.exists(cfg_path):
            fl = floor_ms(shape(json.load(open(cfg_path))), r["params"], int(r["prompt"]),
                          r["gen"], r["block"], per, r["cache"], r["batch"], ceil)
        ms = r["ms_step_median"]
        ratio = ms / t["ms_step"] if t else None
        cell = lambda x, f="{:.2f}": "–" if x is None else f.format(x)
        peak = peaks.get("%s-b%s" % (name, r["batch"]), "–")
        lines.append(
            f"| {name} | {r['cache']} | {r['batch']} | {per} | {ms:.2f} | {cell(t and t['ms_step'])} | "
            f"{cell(ratio)} | {cell(fl)} | {cell(fl and ms / fl)} | {r['tok_s_mean']:.1f} | "
            f"{cell(t and t['tok_s'], '{:.1f}')} | {peak} | "
            f"{cell(t and t['peak_mb'], '{:.0f}')} |")
        if ratio is not None:
            goals.append(ratio <= 0.5)
    lines.append("")
    if goals:
        lines.append(f"ms/step ≤ 0.5× the reference in {sum(goals)} of {len(goals)} rows.")
    lines.append("")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
