#!/usr/bin/env bash
# Builds the CUDA release binary here (no GPU needed: scripts/cuda-toolchain.sh), strips it
# and gzips it into target/gpu-bundle/ouroboros.gz, which run.sh unpacks on the GPU machine.
# The copy to that machine carries at most 64 MiB: the binary is about 260 MB as built, 85 MB
# stripped and 23 MB gzipped (measured at this commit's parent, CUDA 13.0, sm_90).
#
#   benches/gpu/bundle.sh        then carry target/gpu-bundle with the working tree
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
eval "$(scripts/cuda-toolchain.sh | tail -n 1)"
cargo build --release --features cuda --target-dir target/cuda
mkdir -p target/gpu-bundle
strip -o target/gpu-bundle/ouroboros target/cuda/release/ouroboros
gzip -9 -c target/gpu-bundle/ouroboros >target/gpu-bundle/ouroboros.gz
rm target/gpu-bundle/ouroboros
ls -l target/cuda/release/ouroboros target/gpu-bundle/ouroboros.gz
