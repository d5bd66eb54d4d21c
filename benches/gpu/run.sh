#!/usr/bin/env bash
# The GPU round trip in one command, for a machine with a GPU, PyTorch and no Rust toolchain:
#   1. the driver and the card;
#   2. the engine's goldens on CUDA (f32: the reference's tokens; bf16: logits within 2e-2);
#   3. the vocabulary kernels against their CPU references;
#   4. the card's ceilings (copy bandwidth, bf16 matmul rate), then the speed table: Dream-7B
#      and LLaDA-8B shapes with random weights, prompt 512, gen 256, block 32, 1/4/8 tokens a
#      step, caches none/prefix/dual, batch 1 (and 8 at 8 a step), ouroboros and the PyTorch
#      reference alternately;
#   5. RESULTS.md from all of it.
# Everything lands in OUTDIR (default $OUT, else ./gpu-results): one file per step, log.txt,
# and steps.tsv with each step's status and seconds. A failed step is recorded and the next
# one runs. Each step has a time limit, so the whole stays inside about 7 minutes.
#
#   benches/gpu/run.sh [--dry-run] [--binary BIN] [--python PY] [OUTDIR]
#
# --dry-run runs the same steps on the CPU with the tiny fixtures (tests/fixtures/diffusion) in
# place of the 7B/8B shapes, so the script is proven before GPU time is spent; steps that need
# torch are skipped, with the reason, when it is missing. BIN defaults to target/release/
# ouroboros, or on a GPU run to target/gpu-bundle/ouroboros(.gz) (benches/gpu/bundle.sh).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dry=0
binary=""
python="${PYTHON:-python3}"
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1; shift ;;
    --binary) binary="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) out="$1"; shift ;;
  esac
done
out="${out:-${OUT:-./gpu-results}}"
mkdir -p "$out" || { echo "run.sh: cannot create $out" >&2; exit 2; }
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log="$out/log.txt"
: >"$log"
printf 'step\tstatus\tseconds\n' >"$out/steps.tsv"
started=$(date +%s)

say() { echo "[run.sh $(( $(date +%s) - started ))s] $*" | tee -a "$log" >&2; }

# step NAME LIMIT_S OUTFILE CMD...: run CMD with a time limit, stdout to OUTFILE.
step() {
  local name="$1" limit="$2" file="$3"; shift 3
  say "$name: $*"
  local t0=$(date +%s) status
  timeout --kill-after=10 "$limit" "$@" >"$file" 2>>"$log"
  local rc=$?
  case $rc in
    0) status=ok ;;
    124|137) status="timeout after ${limit}s" ;;
    *) status="failed (exit $rc)" ;;
  esac
  printf '%s\t%s\t%s\n' "$name" "$status" "$(( $(date +%s) - t0 ))" >>"$out/steps.tsv"
  say "$name: $status"
  return 0
}

skip() {
  printf '%s\tskipped: %s\t0\n' "$1" "$2" >>"$out/steps.tsv"
  say "$1: skipped: $2"
}

# --- the binary -----------------------------------------------------------------------------
if [ -z "$binary" ]; then
  if [ $dry = 1 ]; then
    binary="$root/target/release/ouroboros"
  elif [ -f "$root/target/gpu-bundle/ouroboros.gz" ]; then
    gunzip -c "$root/target/gpu-bundle/ouroboros.gz" >"$work/ouroboros" && chmod +x "$work/ouroboros"
    binary="$work/ouroboros"
  else
    binary="$root/target/gpu-bundle/ouroboros"
  fi
fi
[ -x "$binary" ] || { echo "run.sh: $binary: no such binary (cargo build --release, or benches/gpu/bundle.sh)" >&2; exit 2; }

# --- 1. driver, card, libraries --------------------------------------------------------------
if [ $dry = 1 ]; then
  device=cpu
  echo "dry run on the CPU: $(uname -m), $(nproc) cores" >"$out/env.txt"
else
  device=cuda
  # The CUDA 13 libraries the binary links, wherever this machine keeps them.
  libs=$(find /usr/local/cuda*/lib64 /usr/lib/x86_64-linux-gnu \
           $("$python" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null) \
           -maxdepth 4 \( -name 'libcublas.so.13*' -o -name 'libcudart.so.13*' -o -name 'libcurand.so.10*' \) \
           2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
  export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:-}"
  { nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
    nvidia-smi | head -n 4
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    echo "ldd:"; ldd "$binary" | grep -E 'cuda|cublas|curand|not found'
  } >"$out/env.txt" 2>&1
fi
"$binary" --version >>"$out/env.txt" 2>&1
say "binary $binary, device $device"

torch_ok=1
torch_why=""
if ! "$python" -c 'import torch, transformers' 2>/dev/null; then
  torch_ok=0
  torch_why="$python has no torch/transformers"
fi

# --- 2. goldens ------------------------------------------------------------------------------
fixtures="$root/tests/fixtures/diffusion"
step goldens-f32 90 "$out/goldens-f32.md" \
  "$binary" bench goldens --fixtures "$fixtures" --device "$device" --dtype f32
step goldens-bf16 90 "$out/goldens-bf16.md" \
  "$binary" bench goldens --fixtures "$fixtures" --device "$device" --dtype bf16

# --- 3. kernels ------------------------------------------------------------------------------
if [ $dry = 1 ]; then
  # No GPU: the command must say so and exit non-zero; that is what is checked here.
  "$binary" bench kernels >"$out/kernels.txt" 2>&1
  rc=$?
  printf 'kernels\tskipped: no GPU (exit %s: %s)\t0\n' "$rc" "$(head -c 200 "$out/kernels.txt")" >>"$out/steps.tsv"
else
  step kernels 60 "$out/kernels.json" "$binary" bench kernels --json
fi

# --- 4. ceilings and the speed table ----------------------------------------------------------
if [ $dry = 1 ]; then
  shapes="$fixtures/tiny-dream $fixtures/tiny-llada"
  prompt=32; gen=16; block=8; steps="16,4,2"; per_step="1,4,8"; mib=64; side=512
else
  shapes="$here/shapes/dream-7b $here/shapes/llada-8b"
  prompt=512; gen=256; block=32; steps="256,64,32"; per_step="1,4,8"; mib=2048; side=8192
fi
if [ $torch_ok = 1 ]; then
  step ceilings 60 "$out/ceilings.log" \
    "$python" "$here/torch_reference.py" --ceilings --device "$device" --ceilings-mib "$mib" --ceilings-matmul "$side" --out "$out/ceilings.json"
else
  skip ceilings "$torch_why"
fi

# GPU memory in use, sampled while the engine runs (candle keeps no peak of its own).
sample_memory() {
  if [ $dry = 0 ]; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$1" 2>/dev/null &
    echo $!
  fi
}

for shape in $shapes; do
  name=$(basename "$shape")
  dir="$work/$name"
  mkdir -p "$dir"
  cp "$shape/config.json" "$dir/"
  cp "$shape/config.json" "$out/config-$name.json"
  # A fixture has its own tokenizer; the 7B/8B shapes take the bundled model's.
  if [ -f "$shape/tokenizer.json" ]; then
    cp "$shape/tokenizer.json" "$dir/"
  else
    cp "$root/models/ouro-code-tiny/tokenizer.json" "$dir/"
  fi
  for batch_case in "1 $steps" "8 ${steps##*,}"; do
    set -- $batch_case
    batch=$1 steps_here=$2
    pid=$(sample_memory "$out/memory-$name-b$batch.txt")
    step "ouroboros-$name-b$batch" 150 "$out/speed-ouroboros-$name-b$batch.jsonl" \
      "$binary" bench speed --model "$dir" --random-weights --device "$device" --dtype bf16 \
        --prompt-length "$prompt" --gen-length "$gen" --block-length "$block" \
        --steps "$steps_here" --sampler low_confidence --cache none,prefix,dual \
        --batch "$batch" -r 1 --warmup 1 -o jsonl
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null
    if [ $torch_ok = 1 ]; then
      per="$per_step"
      [ "$batch" = 8 ] && per="${per_step##*,}"
      step "torch-$name-b$batch" 150 "$out/torch-$name-b$batch.log" \
        "$python" "$here/torch_reference.py" --config "$dir/config.json" --device "$device" \
          --dtype bf16 --prompt "$prompt" --gen "$gen" --block "$block" --per-step "$per" \
          --cache none,prefix,dual --batch "$batch" --warmup 1 --reps 1 \
          --out "$out/speed-torch.jsonl"
    else
      skip "torch-$name-b$batch" "$torch_why"
    fi
  done
done

# --- 5. the summary --------------------------------------------------------------------------
step summary 30 "$out/RESULTS.md" "$python" "$here/summarize.py" "$out"
say "done in $(( $(date +%s) - started ))s; results in $out"
cat "$out/steps.tsv" >&2
