"""Train the ouro-code-tiny tokenizer: byte-level BPE, 8192 entries, on the training split only.

Run from the repository root after make_corpus.py:

    /work/torchenv/bin/python models/ouro-code-tiny/train/train_tokenizer.py

Writes target/bundled-train/tokenizer.json (export.py copies it into the model directory).
Special tokens sit at fixed ids because config.json and the engine refer to them by id:
0 <|endoftext|> (EOS), 1 <|pad|> (fills the unused tail of an infill span), 2 <|mask|>.
Byte-level pre-tokenization means any byte sequence round-trips; the script checks that on
every held-out file and a sample of training files, since indentation must survive exactly.
"""

import json
import os
import random

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
WORK = os.path.join(ROOT, "target", "bundled-train")
SPECIALS = ["<|endoftext|>", "<|pad|>", "<|mask|>"]
VOCAB = 8192


def load(name):
    with open(os.path.join(WORK, "corpus", name + ".jsonl"), encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def main():
    train = load("train")
    held = load("heldout")
    tok = Tokenizer(models.BPE())
    # add_prefix_space=False: a leading space would change the text the engine sees.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        min_frequency=2,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(train, trainer=trainer, length=len(train))
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    assert tok.get_vocab_size() == VOCAB, tok.get_vocab_size()

    rng = random.Random(0)
    checks = held + rng.sample(train, 50)
    checks.append("def f(x):\n\tif x:\n\t\treturn  x \r\n\n\n    # tab\tand trailing space \n")
    n_tok = 0
    for text in checks:
        ids = tok.encode(text).ids
        n_tok += len(ids)
        back = tok.decode(ids, skip_special_tokens=False)
        assert back == text, "round trip failed"
    n_bytes = sum(len(t.encode()) for t in checks)
    out = os.path.join(WORK, "tokenizer.json")
    tok.save(out)
    print(f"saved {out}: vocab {tok.get_vocab_size()}, round trip ok on {len(checks)} files, "
          f"{n_bytes / n_tok:.2f} bytes/token")


if __name__ == "__main__":
    main()
