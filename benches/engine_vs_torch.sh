#!/usr/bin/env bash
# The engine's per-step cost against PyTorch on the same CPU, the same checkpoint and the same
# loop (benches/reference/torch_dream.py): canvases of 256, 512 and 1024 tokens, prompt:gen 1:1,
# 4 tokens committed per step (low_confidence: gen/steps a step), f32, the same thread count for both. The two run alternately
# (A B A B ...) in one invocation so that drift on a shared machine hits both; the table gives
# the median ms/step of each and their ratio.
#
#   benches/engine_vs_torch.sh [--python PY] [--binary BIN] [--rounds N] [--threads T] [--sizes "256 512 1024"]
#
# Needs a Python with torch, transformers, safetensors and numpy (from PyPI); the checkpoint is
# the 32M Dream-layout random one made by benches/reference/random_checkpoint.py (made here if
# missing, under $TMPDIR). Not part of `cargo test`.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-python3}"
binary="$root/target/release/ouroboros"
rounds=5
threads=2
sizes="256 512 1024"
model="${TMPDIR:-/tmp}/ouroboros-bench-dream-32m"
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --sizes) sizes="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$binary" ] || { echo "$binary: not built (cargo build --release)" >&2; exit 2; }
if [ ! -f "$model/model.safetensors" ]; then
  "$python" "$here/reference/random_checkpoint.py" --layout dream --out "$model" >&2
fi

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for size in $sizes; do
  gen=$((size / 2))
  steps=$((gen / 4))
  for round in $(seq "$rounds"); do
    ms=$(RAYON_NUM_THREADS=$threads "$binary" bench speed --model "$model" --prompt-length "$gen" \
          --gen-length "$gen" --steps "$steps" --sampler low_confidence -r 1 --warmup 1 -o jsonl 2>/dev/null \
        | "$python" -c 'import json,sys; print(json.loads(sys.stdin.readline())["ms_step"])')
    echo "$size ouroboros $ms" >>"$results"
    ms=$(OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads "$python" "$here/reference/torch_dream.py" \
          --model "$model" --canvas "$size" --threads "$threads" --warmup 1 --reps 1 \
        | "$python" -c 'import json,sys; print(json.loads(sys.stdin.readline())["ms_step"])')
    echo "$size torch $ms" >>"$results"
    echo "canvas $size round $round done" >&2
  done
done

"$python" - "$results" "$rounds" "$threads" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
print(f"| canvas | ouroboros ms/step | torch ms/step | ratio | rounds | threads |")
print("|---:|---:|---:|---:|---:|---:|")
for size in sorted({int(r[0]) for r in rows}):
    ours = statistics.median(float(r[2]) for r in rows if int(r[0]) == size and r[1] == "ouroboros")
    theirs = statistics.median(float(r[2]) for r in rows if int(r[0]) == size and r[1] == "torch")
    print(f"| {size} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}x | {sys.argv[2]} | {sys.argv[3]} |")
PY
