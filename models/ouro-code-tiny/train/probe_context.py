"""Does the latest checkpoint use context yet? Prints held-out cross-entropy and top-1 accuracy on
masked tokens at a few fixed mask ratios.

Run from the repository root (cheap; safe while train.py runs):

    /work/torchenv/bin/python models/ouro-code-tiny/train/probe_context.py

The corpus's unigram entropy is about 6.56 nats. A model that only knows token frequencies sits
near it at every ratio with the same accuracy everywhere; once it reads context, the loss at low
ratios (most neighbours visible) falls well below the loss at high ratios.
"""

import os
import random
import sys

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as T  # noqa: E402
from model import LLaDA, Config  # noqa: E402


def main():
    torch.set_num_threads(1)
    tok = Tokenizer.from_file(os.path.join(T.WORK, "tokenizer.json"))
    held = T.Sampler(tok, T.load_texts("heldout"), T.build_split(tok, "heldout"))
    ck = torch.load(T.CKPT, weights_only=False, map_location="cpu")
    model = LLaDA(Config(**ck["config"]))
    model.load_state_dict(ck["model"])
    model.eval()
    ids = held.plain(random.Random(5), 8)
    gen = torch.Generator().manual_seed(5)
    print(f"step {ck['step']}, {ck['tokens']} tokens seen")
    with torch.no_grad():
        for ratio in (0.05, 0.2, 0.5, 0.9):
            m = T.mask_plain(ids, torch.full((ids.shape[0],), ratio), gen)
            logits = model.head(model.hidden(ids.masked_fill(m, T.MASK))[m])
            ce = F.cross_entropy(logits, ids[m]).item()
            acc = (logits.argmax(-1) == ids[m]).float().mean().item()
            print(f"mask ratio {ratio:.2f}: CE {ce:.3f} nats, top-1 {acc:.3f}")


if __name__ == "__main__":
    main()
