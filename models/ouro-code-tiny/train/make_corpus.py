"""Collect the training corpus for ouro-code-tiny.

Run from the repository root:

    /work/torchenv/bin/python models/ouro-code-tiny/train/make_corpus.py

Source: the CPython 3.11 standard library (`Lib/**/*.py`, PSF License 2.0) of the interpreter that
runs this script, or `--lib DIR`. Third-party code that happens to sit in `site-packages` is left
out so that every file carries the same license. Files that are not UTF-8 or that do not compile
(lib2to3 test data, deliberately broken fixtures) are dropped: the model should learn code that
parses.

The held-out split is by file and depends only on the relative path (sha256), so it is stable
across machines and Python patch releases. The held-out list is written next to this script
(`heldout.txt`, committed) because the evaluation draws functions from those files; the texts go
to `target/bundled-train/corpus/{train,heldout}.jsonl` (not committed).
"""

import argparse
import hashlib
import json
import os
import sys
import sysconfig
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
OUT = os.path.join(ROOT, "target", "bundled-train", "corpus")

# Held out: about 3% of files.
HELDOUT_PER_MILLE = 30

# Machine-generated files: lookup tables and build-specific data teach nothing about code.
SKIP_PREFIXES = ("site-packages/", "config-3.", "lib-dynload/", "__pycache__/")
SKIP_NAMES = {"_sysconfigdata__linux_x86_64-linux-gnu.py", "pydoc_data/topics.py"}


def is_generated_codec(rel):
    # encodings/cp1252.py and friends are 300-line charmap tables.
    if not rel.startswith("encodings/"):
        return False
    name = os.path.basename(rel)
    return name not in {"__init__.py", "aliases.py", "idna.py", "punycode.py", "utf_8.py",
                        "utf_16.py", "utf_32.py", "base64_codec.py", "rot_13.py"}


def held_out(tag):
    return int(hashlib.sha256(tag.encode()).hexdigest(), 16) % 1000 < HELDOUT_PER_MILLE


def collect(lib):
    rows = []
    dropped = {"not_utf8": 0, "no_compile": 0, "generated": 0}
    for dirpath, dirnames, filenames in os.walk(lib):
        dirnames.sort()
        for fn in sorted(filenames):
            if not fn.endswith(".py"):
                continue
            full = os.path.join(dirpath, fn)
            rel = os.path.relpath(full, lib).replace(os.sep, "/")
            if rel.startswith(SKIP_PREFIXES) or rel in SKIP_NAMES or "/__pycache__/" in rel:
                continue
            if is_generated_codec(rel):
                dropped["generated"] += 1
                continue
            raw = open(full, "rb").read()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                dropped["not_utf8"] += 1
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    compile(text, rel, "exec", dont_inherit=True)
            except (SyntaxError, ValueError):
                dropped["no_compile"] += 1
                continue
            # One newline convention: the engine sees files as read on Unix.
            text = text.replace("\r\n", "\n")
            tag = "cpython-3.11/Lib/" + rel
            rows.append({"path": tag, "source": "cpython-3.11", "license": "PSF-2.0", "text": text})
    return rows, dropped


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", default=sysconfig.get_paths()["stdlib"])
    args = ap.parse_args()
    if not sys.version.startswith("3.11") and "3.11" not in args.lib:
        print("warning: expected a CPython 3.11 Lib directory", file=sys.stderr)
    rows, dropped = collect(args.lib)
    os.makedirs(OUT, exist_ok=True)
    train, held = [], []
    for r in rows:
        (held if held_out(r["path"]) else train).append(r)
    for name, part in (("train", train), ("heldout", held)):
        with open(os.path.join(OUT, name + ".jsonl"), "w", encoding="utf-8") as f:
            for r in part:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(os.path.join(HERE, "heldout.txt"), "w", encoding="utf-8") as f:
        f.write("# Held-out files (sha256(path) %% 1000 < %d); never trained on.\n" % HELDOUT_PER_MILLE)
        for r in held:
            f.write(r["path"] + "\n")
    stats = {
        "lib": args.lib,
        "files_train": len(train),
        "files_heldout": len(held),
        "bytes_train": sum(len(r["text"].encode()) for r in train),
        "bytes_heldout": sum(len(r["text"].encode()) for r in held),
        "dropped": dropped,
    }
    with open(os.path.join(OUT, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
    print(json.dumps(stats, indent=1))


if __name__ == "__main__":
    main()
