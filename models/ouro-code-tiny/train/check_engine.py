"""Check that the exported model means the same thing in PyTorch and in the Rust engine.

Run from the repository root after export.py (needs target/release/ouroboros):

    /work/torchenv/bin/python models/ouro-code-tiny/train/check_engine.py [--model DIR]

For each prompt it decodes greedily in PyTorch with LLaDA's low-confidence remasking at one
token per step (steps = gen_length, a single block, EOS allowed), from the exported f16 weights
upcast to f32, and runs `ouroboros generate --json` with the same settings. Identical token ids
mean the layout, RoPE, norms, attention and head agree; a mismatch prints the first differing
position and both models' top candidates there, which is where to start looking.
"""

import argparse
import json
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import LLaDA, Config  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
PROMPTS = [
    "def add(a, b):\n",
    "import os\n\n\ndef read_lines(path):\n    \"\"\"Return the lines of a file.\"\"\"\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n",
]


def load(model_dir):
    c = json.load(open(os.path.join(model_dir, "config.json")))
    cfg = Config(vocab_size=c["vocab_size"], d_model=c["d_model"], n_heads=c["n_heads"],
                 n_layers=c["n_layers"], mlp_hidden_size=c["mlp_hidden_size"],
                 max_sequence_length=c["max_sequence_length"], rope_theta=c["rope_theta"],
                 rms_norm_eps=c["rms_norm_eps"])
    m = LLaDA(cfg)
    sd = {k: v.float() for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items()}
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.startswith("rope_") for k in missing), (missing, unexpected)
    return m.eval(), c["mask_token_id"]


@torch.no_grad()
def decode(model, mask, prompt_ids, gen):
    x = torch.tensor([prompt_ids + [mask] * gen])
    for _ in range(gen):
        pos = (x[0] == mask).nonzero().flatten()
        logits = model(x)[0, pos].float()
        p = torch.softmax(logits, -1)
        # The mask id is never proposed but stays in the normaliser, as in the engine.
        p_pick = p.clone()
        p_pick[:, mask] = -1.0
        conf, tok = p_pick.max(-1)
        k = int(conf.argmax())
        x[0, pos[k]] = tok[k]
    return x[0, len(prompt_ids):].tolist()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.abspath(os.path.join(HERE, "..")))
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "ouroboros"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    model, mask = load(args.model)
    ok = True
    for prompt in PROMPTS:
        ids = tok.encode(prompt).ids
        ours = decode(model, mask, ids, args.gen)
        out = subprocess.run([args.bin, "generate", "--model", args.model, "--prompt", prompt,
                              "--gen-length", str(args.gen), "--steps", str(args.gen),
                              "--sampler", "low_confidence", "--temperature", "0", "--json"],
                             capture_output=True, text=True, check=True)
        eng = json.loads(out.stdout.strip().splitlines()[-1])
        same = eng["prompt_token_ids"] == ids and eng["token_ids"] == ours
        ok &= same
        print(("MATCH " if same else "DIFFER ") + repr(prompt[:40]))
        print("  torch :", repr(tok.decode(ours, skip_special_tokens=False)))
        print("  engine:", repr(eng["text"]))
        if not same:
            print("  prompt ids equal:", eng["prompt_token_ids"] == ids)
            d = next((i for i, (a, b) in enumerate(zip(ours, eng["token_ids"])) if a != b), None)
            print("  first differing generated position:", d)
    print("ALL MATCH" if ok else "SOME DIFFER")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
