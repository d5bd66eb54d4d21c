"""Train ouro-code-tiny on CPU with the LLaDA masked-diffusion objective plus an infill objective.

Run from the repository root after make_corpus.py and train_tokenizer.py:

    # measure throughput of a size (no checkpoint is written)
    /work/torchenv/bin/python models/ouro-code-tiny/train/train.py --bench 6 --d-model 256 --n-layers 6
    # start
    nohup nice -n 19 /work/torchenv/bin/python models/ouro-code-tiny/train/train.py \
        --total-steps N > target/bundled-train/train.log 2>&1 &
    # continue after the process died (architecture, schedule and RNG come from the checkpoint)
    nohup nice -n 19 /work/torchenv/bin/python models/ouro-code-tiny/train/train.py --resume \
        >> target/bundled-train/train.log 2>&1 &

Objective (Nie et al. 2025, "Large Language Diffusion Models"): per sequence draw t ~ U(eps, 1),
replace each token by <|mask|> (id 2) with probability t, and minimise the cross-entropy on the
masked positions. LLaDA weights each masked token by 1/t (the ELBO). With batches of 8 on a CPU
that weighting is ruinous: a row with t = 0.002 and one masked token carries 500 times the weight
of a typical row, so after gradient clipping a whole update is spent on one token. Two runs trained
that way sat at the unigram entropy (and below unigram top-1 accuracy) after 0.9M-4.4M tokens. So
by default (--loss mean) every masked token in the batch counts once, the MaskGIT-style objective;
--loss elbo restores the 1/t weighting for comparison.

Half of the batches are infill batches instead: a function body from a training file, tokenized
on its own between separately tokenized prefix and suffix text (exactly how the engine's
`--infill FILE:START-END` builds its canvas), followed by <|pad|> up to a span length L in
{32, 64, 128, 256}. Only the span is masked. The model thereby learns to write a body into a
fixed-length span and to fill what is left with <|pad|>, which the engine strips.

Everything lives in target/bundled-train/: caches, ckpt.pt (every --ckpt-minutes and on
SIGTERM/SIGINT, written atomically), loss.csv.
"""

import argparse
import ast
import csv
import json
import math
import os
import random
import signal
import sys
import time

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import LLaDA, Config  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
WORK = os.path.join(ROOT, "target", "bundled-train")
CKPT = os.path.join(WORK, "ckpt.pt")
LOSS_CSV = os.path.join(WORK, "loss.csv")

EOS, PAD, MASK = 0, 1, 2
SPANS = (32, 64, 128, 256)
SEQ = 512
EPS = 1e-3


# ---------------------------------------------------------------- data

def load_texts(name):
    with open(os.path.join(WORK, "corpus", name + ".jsonl"), encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def body_spans(text):
    """Character ranges of function bodies, as whole lines, leaving out the docstring.

    Whole lines because the engine's infill replaces lines START-END; the def line, decorators
    and docstring stay in the prefix so the model sees the signature and intent.
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            body = body[1:]
        if not body:
            continue
        first = body[0].lineno
        if first == node.lineno:  # one-liner `def f(): return x`: no line of its own to rewrite
            continue
        last = node.end_lineno
        if last >= len(starts):
            continue
        out.append((starts[first - 1], starts[last]))
    return out


def build_split(tok, name):
    """Token stream (files joined by EOS) and infill candidates of one split, cached on disk."""
    cache = os.path.join(WORK, f"cache-{name}.pt")
    if os.path.exists(cache):
        return torch.load(cache)
    texts = load_texts(name)
    encs = tok.encode_batch(texts)
    stream = []
    for e in encs:
        stream.extend(e.ids)
        stream.append(EOS)
    funcs = []  # (file index, body start char, body end char, body tokens)
    cand = [(i, s, e) for i, t in enumerate(texts) for (s, e) in body_spans(t)]
    bodies = tok.encode_batch([texts[i][s:e] for i, s, e in cand])
    for (i, s, e), b in zip(cand, bodies):
        if 1 <= len(b.ids) <= SPANS[-1]:
            funcs.append((i, s, e, len(b.ids)))
    data = {"stream": torch.tensor(stream, dtype=torch.int16), "funcs": funcs, "n_files": len(texts)}
    torch.save(data, cache)
    return data


class Sampler:
    def __init__(self, tok, texts, data):
        self.tok, self.texts = tok, texts
        self.stream, self.funcs = data["stream"], data["funcs"]

    def plain(self, rng, batch):
        n = self.stream.numel() - SEQ
        rows = [self.stream[s:s + SEQ] for s in (rng.randrange(n) for _ in range(batch))]
        return torch.stack(rows).long()

    def infill_one(self, rng, crop=False):
        i, s, e, n_body = self.funcs[rng.randrange(len(self.funcs))]
        fits = [L for L in SPANS if L >= n_body]
        # Mostly the tightest span, sometimes the next one: at inference the caller picks the
        # span length without knowing the body's, so longer pad tails must be handled too.
        L = fits[1] if len(fits) > 1 and rng.random() < 0.3 else fits[0]
        text = self.texts[i]
        body = self.tok.encode(text[s:e]).ids
        ctx = SEQ - L
        if crop and rng.random() < 0.5:
            # The engine's canvases are whole (often short) files, not full windows: vary how
            # much context surrounds the span.
            ctx = rng.randint(0, ctx)
        # Generous character windows (≈3.7 bytes/token on this corpus) so token budgets fill.
        pre = self.tok.encode(text[max(0, s - 8 * ctx):s]).ids
        suf = self.tok.encode(text[e:e + 8 * ctx]).ids
        n_pre = min(len(pre), max(ctx // 2, ctx - len(suf)))
        n_suf = min(len(suf), ctx - n_pre)
        ids = (pre[len(pre) - n_pre:] if n_pre else []) + body + [PAD] * (L - len(body)) + suf[:n_suf]
        span = (n_pre, n_pre + L)
        n = len(ids)
        # Filler only to make a rectangular tensor; each row is run at its own length `n`, so
        # the model never sees it (an engine canvas ends where the file ends, with nothing after).
        ids += [EOS] * (SEQ - n)
        return ids, span, n

    def infill(self, rng, batch, crop=False):
        rows, spans, lens = zip(*(self.infill_one(rng, crop) for _ in range(batch)))
        return torch.tensor(rows), list(spans), list(lens)


def mask_plain(ids, t, gen):
    p = t[:, None].expand_as(ids)
    m = torch.rand(ids.shape, generator=gen) < p
    return m


def mask_span(ids, t, spans, gen):
    m = torch.rand(ids.shape, generator=gen) < t[:, None]
    inside = torch.zeros_like(m)
    for r, (a, b) in enumerate(spans):
        inside[r, a:b] = True
    return m & inside


ELBO = False  # set from --loss in main()


def masked_loss(model, ids, m, t, denom):
    x = ids.masked_fill(m, MASK)
    h = model.hidden(x)
    # The head runs only on masked rows: it is a large share of the compute at this size.
    logits = model.head(h[m])
    ce = F.cross_entropy(logits.float(), ids[m], reduction="none")
    if ELBO:
        ce = ce * (1.0 / t)[:, None].expand_as(ids)[m]
    return ce.sum() / denom, ce.sum().item(), int(m.sum())


def loss_denom(m, n_tokens):
    """What a batch's summed loss is divided by: its token count for the ELBO, else its masks."""
    return n_tokens if ELBO else max(1, int(m.sum()))


def rows_loss(model, ids, m, t, lens, denom, backward):
    """Sum of per-row losses, each row cut to its own length (rows differ in length)."""
    total = 0.0
    for r, n in enumerate(lens):
        loss, _, _ = masked_loss(model, ids[r:r + 1, :n], m[r:r + 1, :n], t[r:r + 1], denom)
        if backward:
            loss.backward()
        total += loss.item()
    return total


def draw_t(batch, gen):
    """One t per row, stratified over the batch (MDLM's low-discrepancy sampler).

    Each row gets its own stratum of [eps, 1], so every batch spans light to heavy masking;
    with batches of 8 independent draws the gradient noise from t alone was large.
    """
    u = (torch.arange(batch) + torch.rand(1, generator=gen)) / batch
    u = u[torch.randperm(batch, generator=gen)]
    return (1 - EPS) * u + EPS


def plain_step_loss(model, sampler, rng, gen, batch, short_seq=None):
    if short_seq:
        # Warm-up phase: the same tokens per step in short windows (see --short-steps).
        ids = sampler.plain(rng, batch * SEQ // short_seq)[:, :short_seq]
        batch = ids.shape[0]
    else:
        ids = sampler.plain(rng, batch)
    if not short_seq and rng.random() < 0.1:
        # Short canvases (a prompt plus its masks) are the engine's common case; LLaDA likewise
        # trains on a share of random-length sequences.
        ids = ids[:, :rng.randint(32, SEQ)]
    t = draw_t(batch, gen)
    m = mask_plain(ids, t, gen)
    loss, _, _ = masked_loss(model, ids, m, t, loss_denom(m, ids.numel()))
    loss.backward()
    return loss.item(), ids.numel()


def infill_step_loss(model, sampler, rng, gen, batch):
    ids, spans, lens = sampler.infill(rng, batch, crop=True)
    t = draw_t(batch, gen)
    m = mask_span(ids, t, spans, gen)
    loss = rows_loss(model, ids, m, t, lens, loss_denom(m, sum(b - a for a, b in spans)), backward=True)
    return loss, sum(lens)


def heldout_batches(sampler, n=16):
    """A fixed evaluation set: same windows, masks and t on every call, so curves are comparable."""
    rng, gen = random.Random(1234), torch.Generator().manual_seed(1234)
    t = torch.linspace(0.05, 0.95, n)
    ids = sampler.plain(rng, n)
    m = mask_plain(ids, t, gen)
    plain = (ids, m, t, [SEQ] * n, loss_denom(m, ids.numel()))
    ids, spans, lens = sampler.infill(rng, n)
    m = mask_span(ids, t, spans, gen)
    inf = (ids, m, t, lens, loss_denom(m, sum(b - a for a, b in spans)))
    return plain, inf


@torch.no_grad()
def evaluate(model, batches):
    model.eval()
    out = []
    for ids, m, t, lens, denom in batches:
        out.append(rows_loss(model, ids, m, t, lens, denom, backward=False))
    model.train()
    return out


# ---------------------------------------------------------------- schedule, checkpoints

def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    frac = min(1.0, (step - args.warmup) / max(1, args.total_steps - args.warmup))
    return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * frac)))


def save_ckpt(state):
    tmp = CKPT + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, CKPT)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--bench", type=int, default=0, help="time this many steps and exit")
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--n-layers", type=int, default=6)
    ap.add_argument("--n-heads", type=int, default=8)
    ap.add_argument("--ffn", type=int, default=768)
    # LLaDA-8B's 500000 suits 128-dim heads and long contexts; with 32-dim heads it leaves only
    # two or three rotating pairs over 512 positions, and the first run never learned to use
    # its neighbours (held-out loss flat at the unigram level after 4.4M tokens).
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--total-steps", type=int, default=3000)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--infill-frac", type=float, default=0.5)
    # A short-sequence warm-up: with 512-token windows from the start, the third run sat at the
    # unigram loss after 1.6M tokens while the same recipe on 128-token windows left it after
    # 0.3M (attention has to find the few neighbours that matter among many positions first).
    ap.add_argument("--short-seq", type=int, default=128)
    ap.add_argument("--short-steps", type=int, default=800,
                    help="plain batches only, in --short-seq windows, for this many steps")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--ckpt-minutes", type=float, default=10.0)
    ap.add_argument("--loss", choices=("mean", "elbo"), default="mean",
                    help="mean CE over masked tokens (default) or LLaDA's 1/t-weighted ELBO")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    tok = Tokenizer.from_file(os.path.join(WORK, "tokenizer.json"))
    ckpt = torch.load(CKPT, weights_only=False) if args.resume else None
    if ckpt is not None:
        # The run's own settings win, except an explicitly longer schedule.
        saved = ckpt["args"]
        extend = args.total_steps if "--total-steps" in sys.argv else None
        for k in ("d_model", "n_layers", "n_heads", "ffn", "batch", "lr", "min_lr_frac", "warmup",
                  "total_steps", "weight_decay", "clip", "infill_frac", "seed", "short_seq",
                  "short_steps"):
            setattr(args, k, saved.get(k, 0 if k == "short_steps" else getattr(args, k)))
        args.loss = saved.get("loss", "elbo")
        if extend:
            args.total_steps = extend
        # Runs from before the flag existed used LLaDA's theta.
        args.rope_theta = saved.get("rope_theta", 500000.0)

    global ELBO
    ELBO = args.loss == "elbo"
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    t0 = time.time()
    train_texts = load_texts("train")
    held_texts = load_texts("heldout")
    train = Sampler(tok, train_texts, build_split(tok, "train"))
    held = Sampler(tok, held_texts, build_split(tok, "heldout"))
    print(f"data: {train.stream.numel()} train tokens, {len(train.funcs)} infill functions; "
          f"{held.stream.numel()} held-out tokens, {len(held.funcs)} functions "
          f"({time.time() - t0:.1f}s)", flush=True)
    eval_set = heldout_batches(held)

    cfg = Config(vocab_size=tok.get_vocab_size(), d_model=args.d_model, n_heads=args.n_heads,
                 n_layers=args.n_layers, mlp_hidden_size=args.ffn, max_sequence_length=SEQ,
                 rope_theta=args.rope_theta)
    model = LLaDA(cfg)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "wte" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or "wte" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    rng = random.Random(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    step, tokens, elapsed = 0, 0, 0.0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        step, tokens, elapsed = ckpt["step"], ckpt["tokens"], ckpt["elapsed"]
        rng.setstate(ckpt["rng"])
        gen.set_state(ckpt["gen"])
        torch.set_rng_state(ckpt["torch_rng"])
        print(f"resumed at step {step}, {tokens} tokens, {elapsed:.0f}s", flush=True)
    print(f"model: {model.n_params()} params, {json.dumps(vars(args))}", flush=True)

    def state():
        return {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "tokens": tokens,
                "elapsed": elapsed, "rng": rng.getstate(), "gen": gen.get_state(),
                "torch_rng": torch.get_rng_state(), "args": vars(args), "config": cfg.__dict__}

    stop = {"flag": False}

    def on_signal(signum, _frame):
        stop["flag"] = True
        print(f"signal {signum}: saving after this step", flush=True)

    if not args.bench:
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        if not os.path.exists(LOSS_CSV) or not args.resume:
            with open(LOSS_CSV, "w", newline="") as f:
                csv.writer(f).writerow(["step", "tokens_seen", "elapsed_s", "lr", "train_loss",
                                        "train_loss_plain", "train_loss_infill",
                                        "heldout_loss_plain", "heldout_loss_infill"])

    model.train()
    acc = {"plain": [], "infill": []}
    last_ckpt = time.time()
    seg_start = time.time()
    seg_elapsed0 = elapsed
    bench_t = None
    while step < (args.bench if args.bench else args.total_steps):
        if args.bench and step == 1:
            bench_t = time.time()  # first step pays one-off allocation costs
            first_tokens = tokens
        lr = lr_at(step, args)
        for g in opt.param_groups:
            g["lr"] = lr
        short = step < args.short_steps
        kind = "infill" if not short and rng.random() < args.infill_frac else "plain"
        opt.zero_grad(set_to_none=True)
        if kind == "infill":
            loss, n_tok = infill_step_loss(model, train, rng, gen, args.batch)
        else:
            loss, n_tok = plain_step_loss(model, train, rng, gen, args.batch,
                                          args.short_seq if short else None)
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        step += 1
        tokens += n_tok  # positions run through the model, context included
        elapsed = seg_elapsed0 + time.time() - seg_start
        acc[kind].append(loss)
        if args.bench:
            continue
        if step % args.log_every == 0 or stop["flag"]:
            ev = evaluate(model, eval_set) if step % args.eval_every == 0 else ["", ""]
            mean = lambda v: sum(v) / len(v) if v else float("nan")
            allv = acc["plain"] + acc["infill"]
            row = [step, tokens, round(elapsed, 1), f"{lr:.3e}", f"{mean(allv):.4f}",
                   f"{mean(acc['plain']):.4f}", f"{mean(acc['infill']):.4f}",
                   f"{ev[0]:.4f}" if ev[0] != "" else "", f"{ev[1]:.4f}" if ev[1] != "" else ""]
            with open(LOSS_CSV, "a", newline="") as f:
                csv.writer(f).writerow(row)
            print(" ".join(map(str, row)), f"{tokens / max(elapsed, 1e-9):.0f} tok/s", flush=True)
            acc = {"plain": [], "infill": []}
        if stop["flag"] or time.time() - last_ckpt > 60 * args.ckpt_minutes:
            save_ckpt(state())
            last_ckpt = time.time()
            print(f"checkpoint at step {step}", flush=True)
            if stop["flag"]:
                return
    if not args.bench:
        save_ckpt(state())
        print(f"finished: {step} steps, checkpoint saved", flush=True)
        return
    if args.bench:
        dt = time.time() - bench_t
        n = tokens - first_tokens
        print(f"BENCH params={model.n_params()} d={args.d_model} L={args.n_layers} ffn={args.ffn} "
              f"batch={args.batch}: {n / dt:.0f} tok/s, {dt / (args.bench - 1):.2f} s/step", flush=True)


if __name__ == "__main__":
    main()
