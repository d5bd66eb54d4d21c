#!/usr/bin/env bash
# Puts a CUDA 13.0 build toolchain (nvcc and the libraries candle links) into DIR, default
# target/cuda13, on a machine with no GPU and no CUDA install, from NVIDIA's PyPI wheels; then
# prints one `export ...` line for `eval`. Usage:
#   eval "$(scripts/cuda-toolchain.sh | tail -n 1)"
#   cargo build --release --features cuda --target-dir target/cuda
# 13.0 because the GPU machines we run on have driver 580, whose newest CUDA is 13.0: PTX from a
# newer nvcc would not load there. CUDA_COMPUTE_CAP=90 builds for Hopper (H100/H200) only, which
# keeps the binary small; without it candle's build asks nvidia-smi, absent here.
set -euo pipefail
dir=${1:-target/cuda13}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
cu="$dir/nvidia/cu13"
env_line="export CUDA_ROOT=$cu CUDA_PATH=$cu PATH=$cu/bin:\$PATH CUDA_COMPUTE_CAP=\${CUDA_COMPUTE_CAP:-90}"

if [ ! -x "$cu/bin/nvcc" ] || [ ! -f "$cu/lib/libcublas.so" ]; then
  mkdir -p "$dir/wheels"
  python3 -m pip download -q --no-deps -d "$dir/wheels" \
    "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-crt==13.0.*" "nvidia-nvvm==13.0.*" \
    "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*" \
    "nvidia-cublas==13.0.*" "nvidia-cuda-nvrtc==13.0.*" "nvidia-curand==10.4.0.*" >&2
  for wheel in "$dir"/wheels/*.whl; do
    python3 -m zipfile -e "$wheel" "$dir"
  done
  chmod +x "$cu"/bin/* "$cu"/nvvm/bin/* 2>/dev/null || true
  # The wheels carry only versioned sonames; the linker looks for the bare names.
  for lib in cublas cublasLt cudart curand nvrtc; do
    versioned=$(cd "$cu/lib" && ls "lib$lib.so."* | head -n 1)
    ln -sf "$versioned" "$cu/lib/lib$lib.so"
  done
fi

# libcuda is the driver's own library and no wheel has it. Linking needs only its names, so a
# stub exporting every cu* identifier of cuda.h under the real soname stands in at link time;
# on the GPU machine the driver's libcuda.so.1 is what loads. Surplus names do no harm.
if [ ! -f "$cu/lib/libcuda.so" ]; then
  { grep -ohE '\bcu[A-Z][A-Za-z0-9_]*' "$cu/include/cuda.h"
    # Profiler entry points some bindings still name, gone from cuda.h since CUDA 12.
    printf '%s\n' cuProfilerInitialize cuProfilerStart cuProfilerStop; } |
    sort -u | awk '{print "void " $1 "(void) {}"}' > "$dir/libcuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$cu/lib/libcuda.so" "$dir/libcuda_stub.c"
fi

echo "$env_line"
