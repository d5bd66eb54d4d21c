"""The ouro-code-tiny network in PyTorch, laid out so its state dict loads in the engine's LLaDA
loader (src/diffusion/llada.rs + layers.rs) unchanged.

Not run directly; train.py and export.py import it. The correspondence that matters:

* parameter names are the OLMo ones LLaDA checkpoints use (`model.transformer.wte.weight`,
  `...blocks.N.q_proj.weight`, `...ff_out.weight` for the untied head);
* pre-norm blocks with RMSNorm (weight, no bias), SwiGLU `ff_out(silu(ff_proj(x)) * up_proj(x))`;
* attention is bidirectional with no mask at all, as in the engine;
* rotate-half RoPE (candle's `rope`, not `rope_i`), tables computed in fp32;
* no logit shift: the logits at position i are the prediction for token i.
"""

import json
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab_size: int = 8192
    d_model: int = 256
    n_heads: int = 8
    n_layers: int = 6
    mlp_hidden_size: int = 768
    max_sequence_length: int = 512
    rope_theta: float = 500000.0
    rms_norm_eps: float = 1e-5
    init_std: float = 0.02

    def to_json(self):
        return json.dumps(asdict(self))


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        # Statistics in fp32 whatever the activations are, like candle's rms_norm.
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xf * self.weight.float()).to(x.dtype)


def rope_tables(head_dim, positions, theta):
    # fp32 on purpose: the engine builds the tables in f32 before casting.
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim // 2, dtype=torch.float64) * 2.0 / head_dim))
    inv_freq = inv_freq.float()
    pos = torch.arange(positions, dtype=torch.float32)
    freqs = torch.outer(pos, inv_freq)
    return freqs.cos(), freqs.sin()


def apply_rope(x, cos, sin):
    # x: (b, h, s, d). Rotate-half pairs element i with element i + d/2.
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[: x.shape[2]].to(x.dtype), sin[: x.shape[2]].to(x.dtype)
    return torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, f = cfg.d_model, cfg.mlp_hidden_size
        self.n_heads = cfg.n_heads
        self.attn_norm = RMSNorm(d, cfg.rms_norm_eps)
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_norm = RMSNorm(d, cfg.rms_norm_eps)
        self.ff_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.ff_out = nn.Linear(f, d, bias=False)

    def forward(self, x, cos, sin):
        b, s, d = x.shape
        h = self.attn_norm(x)
        split = lambda t: t.view(b, s, self.n_heads, d // self.n_heads).transpose(1, 2)
        q = apply_rope(split(self.q_proj(h)), cos, sin)
        k = apply_rope(split(self.k_proj(h)), cos, sin)
        v = split(self.v_proj(h))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=None, is_causal=False)
        x = x + self.attn_out(a.transpose(1, 2).reshape(b, s, d))
        h = self.ff_norm(x)
        return x + self.ff_out(F.silu(self.ff_proj(h)) * self.up_proj(h))


class Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.ln_f = RMSNorm(cfg.d_model, cfg.rms_norm_eps)
        self.ff_out = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)


class LLaDA(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = nn.Module()
        self.model.transformer = Transformer(cfg)
        cos, sin = rope_tables(cfg.d_model // cfg.n_heads, cfg.max_sequence_length, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self._init()

    def _init(self):
        std = self.cfg.init_std
        # Residual-branch outputs scaled down with depth (GPT-2 style) so early training is stable.
        out_std = std / math.sqrt(2 * self.cfg.n_layers)
        for name, p in self.named_parameters():
            if p.dim() < 2:
                continue
            if name.endswith("attn_out.weight") or (".blocks." in name and name.endswith("ff_out.weight")):
                nn.init.normal_(p, 0.0, out_std)
            else:
                nn.init.normal_(p, 0.0, std)

    def hidden(self, ids):
        t = self.model.transformer
        x = t.wte(ids)
        for b in t.blocks:
            x = b(x, self.rope_cos, self.rope_sin)
        return x

    def head(self, h):
        t = self.model.transformer
        return t.ff_out(t.ln_f(h))

    def forward(self, ids):
        return self.head(self.hidden(ids))

    def n_params(self):
        return sum(p.numel() for p in self.parameters())
