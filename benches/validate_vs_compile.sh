#!/usr/bin/env bash
# `ouroboros validate` against CPython's own compile() over the same files, alternately
# (A B A B ...) in one run so that a noisy machine hurts both alike; prints each wall time, the
# medians and their ratio, at one thread each and at two each.
#
#   benches/validate_vs_compile.sh [DIR] [ROUNDS]   # default: this Python's Lib/, 3 rounds
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')}"
rounds="${2:-3}"
bin=target/release/ouroboros
[ -x "$bin" ] || cargo build --release
python3 - "$dir" "$rounds" "$bin" <<'PY'
import os, statistics, subprocess, sys, time, warnings
warnings.simplefilter("ignore")
from concurrent.futures import ProcessPoolExecutor

root, rounds, binary = sys.argv[1], int(sys.argv[2]), sys.argv[3]
files = []
for d, _, names in os.walk(root):
    files += [os.path.join(d, n) for n in names if n.endswith(".py")]
files.sort()
texts = []
for f in files:
    try:
        with open(f, encoding="utf-8") as fh:
            texts.append(fh.read())
    except (UnicodeDecodeError, OSError):
        pass

def compile_chunk(chunk):
    bad = 0
    for t in chunk:
        try:
            compile(t, "<f>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            bad += 1
    return bad

def run_compile(jobs):
    start = time.perf_counter()
    if jobs == 1:
        compile_chunk(texts)
    else:
        with ProcessPoolExecutor(jobs) as ex:
            list(ex.map(compile_chunk, [texts[i::jobs] for i in range(jobs)]))
    return time.perf_counter() - start

def run_validate(jobs):
    env = dict(os.environ, RAYON_NUM_THREADS=str(jobs))
    start = time.perf_counter()
    subprocess.run([binary, "validate", root], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start

print(f"{len(texts)} files, {sum(map(len, texts)) / 1e6:.1f} MB")
for jobs in (1, 2):
    v, c = [], []
    for _ in range(rounds):
        v.append(run_validate(jobs))
        c.append(run_compile(jobs))
    mv, mc = statistics.median(v), statistics.median(c)
    print(f"threads {jobs}: validate {[round(x, 2) for x in v]} s, compile() {[round(x, 2) for x in c]} s; "
          f"medians {mv:.2f} / {mc:.2f} = {mv / mc:.2f}x")
PY
