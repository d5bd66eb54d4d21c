// Per-step work over the vocabulary for the diffusion samplers, on CUDA.
//
// A denoising step needs, for each position being decoded, only a handful of numbers from its
// logits row: the best token (never the mask token), its probability, the two largest
// probabilities (Dream's top-k margin) and the entropy. Computing them on the device means a
// step copies a few floats per position to the host instead of the whole [positions, vocab]
// slab (152064 floats per row for Qwen vocabularies), and never materialises the softmax.
//
// One thread block per row walks the row once with an online softmax: a running maximum m,
// s0 = sum exp(x - m) and s1 = sum exp(x - m) * (x - m), rescaled whenever m grows. Then
//   p(x)        = exp(x - m) / s0
//   sum p ln p  = s1 / s0 - ln s0        (the negative entropy Dream ranks by)
// Partial states merge the same way across threads, warps and the block.
//
// The CPU reference is `row_stats_reference` in src/kernels/mod.rs; the selection kernel's
// references are `top_k` and `by_threshold` in src/diffusion/generate/pick.rs.

#include <cuda_bf16.h>
#include <math_constants.h>
#include <stdint.h>

#define THREADS 256

struct State {
    float m;   // running maximum over every token
    float s0;  // sum exp(x - m)
    float s1;  // sum exp(x - m) * (x - m)
    float top1, top2;           // the two largest logits over every token (a multiset)
    float best; int best_idx;   // the first largest logit over allowed tokens
};

__device__ __forceinline__ State empty_state() {
    State s;
    s.m = -CUDART_INF_F; s.s0 = 0.f; s.s1 = 0.f;
    s.top1 = -CUDART_INF_F; s.top2 = -CUDART_INF_F;
    s.best = -CUDART_INF_F; s.best_idx = -1;
    return s;
}

// Fold partial sums (m, s0, s1) taken about another maximum into this state's.
__device__ __forceinline__ void merge_sums(State &a, float m, float s0, float s1) {
    if (s0 == 0.f) return;
    if (a.s0 == 0.f) { a.m = m; a.s0 = s0; a.s1 = s1; return; }
    float hi = fmaxf(a.m, m);
    float ea = __expf(a.m - hi), eb = __expf(m - hi);
    a.s1 = ea * (a.s1 + (a.m - hi) * a.s0) + eb * (s1 + (m - hi) * s0);
    a.s0 = ea * a.s0 + eb * s0;
    a.m = hi;
}

__device__ __forceinline__ void merge(State &a, const State &b) {
    merge_sums(a, b.m, b.s0, b.s1);
    float lo = fminf(a.top1, b.top1);
    a.top1 = fmaxf(a.top1, b.top1);
    a.top2 = fmaxf(lo, fmaxf(a.top2, b.top2));
    // The first maximum wins, as torch.argmax picks it.
    if (b.best_idx >= 0 && (a.best_idx < 0 || b.best > a.best ||
                            (b.best == a.best && b.best_idx < a.best_idx))) {
        a.best = b.best; a.best_idx = b.best_idx;
    }
}

__device__ __forceinline__ void push(State &s, float x, int j, int banned) {
    if (x == -CUDART_INF_F) return;  // suppressed: no mass, never chosen
    if (x > s.m) {
        if (s.s0 > 0.f) {
            float e = __expf(s.m - x);
            s.s1 = e * (s.s1 + (s.m - x) * s.s0);
            s.s0 = e * s.s0;
        }
        s.m = x;
    }
    float e = __expf(x - s.m);
    s.s0 += e;
    s.s1 += e * (x - s.m);
    if (x > s.top1) { s.top2 = s.top1; s.top1 = x; }
    else if (x > s.top2) { s.top2 = x; }
    if (j != banned && (s.best_idx < 0 || x > s.best)) { s.best = x; s.best_idx = j; }
}

__device__ __forceinline__ State shfl_state(const State &s, int offset) {
    State o;
    o.m = __shfl_down_sync(0xffffffff, s.m, offset);
    o.s0 = __shfl_down_sync(0xffffffff, s.s0, offset);
    o.s1 = __shfl_down_sync(0xffffffff, s.s1, offset);
    o.top1 = __shfl_down_sync(0xffffffff, s.top1, offset);
    o.top2 = __shfl_down_sync(0xffffffff, s.top2, offset);
    o.best = __shfl_down_sync(0xffffffff, s.best, offset);
    o.best_idx = __shfl_down_sync(0xffffffff, s.best_idx, offset);
    return o;
}

__device__ __forceinline__ float load(const float *p) { return *p; }
__device__ __forceinline__ float load(const __nv_bfloat16 *p) { return __bfloat162float(*p); }

// out: [rows, 6] = token, p(token), p(top 1), p(top 2), sum p ln p, logsumexp.
// `adjust` ids get `delta` added first (the EOS policy: -inf suppresses, -p penalises).
template <typename T>
__device__ void row_stats(const T *logits, int64_t row_stride, int vocab, int banned,
                          const int *adjust, int n_adjust, float delta, float *out) {
    const T *row = logits + (int64_t)blockIdx.x * row_stride;
    State s = empty_state();
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
        float x = load(row + j);
        for (int k = 0; k < n_adjust; ++k) {
            if (adjust[k] == j) x += delta;
        }
        push(s, x, j, banned);
    }
    for (int offset = 16; offset > 0; offset >>= 1) {
        State o = shfl_state(s, offset);
        merge(s, o);
    }
    __shared__ State warps[THREADS / 32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) warps[warp] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        State all = warps[0];
        for (int w = 1; w < (int)(blockDim.x / 32); ++w) merge(all, warps[w]);
        float *o = out + (int64_t)blockIdx.x * 6;
        float inv = 1.f / all.s0;
        int tok = all.best_idx < 0 ? vocab - 1 : all.best_idx;
        float ptok = all.best_idx < 0 ? 0.f : __expf(all.best - all.m) * inv;
        o[0] = (float)tok;
        o[1] = ptok;
        o[2] = __expf(all.top1 - all.m) * inv;
        o[3] = all.top2 == -CUDART_INF_F ? 0.f : __expf(all.top2 - all.m) * inv;
        o[4] = all.s1 * inv - __logf(all.s0);
        o[5] = all.m + __logf(all.s0);
    }
}

extern "C" __global__ void row_stats_f32(const float *logits, int64_t row_stride, int vocab,
                                         int banned, const int *adjust, int n_adjust,
                                         float delta, float *out) {
    row_stats(logits, row_stride, vocab, banned, adjust, n_adjust, delta, out);
}

extern "C" __global__ void row_stats_bf16(const __nv_bfloat16 *logits, int64_t row_stride,
                                          int vocab, int banned, const int *adjust, int n_adjust,
                                          float delta, float *out) {
    row_stats(logits, row_stride, vocab, banned, adjust, n_adjust, delta, out);
}

// Which positions a step commits, per canvas: conf is [canvases, n] (padding at -inf is never
// committed), out is [canvases, n] with 1 where committed. A position's rank is the number of
// positions ahead of it: more confident, or as confident and earlier (pick.rs's tie rule).
// With k >= 0 the k best are committed; with k < 0 those at or above tau, and always the best.
extern "C" __global__ void select_commits(const float *conf, int n, int k, float tau,
                                          float *out) {
    const float *c = conf + (int64_t)blockIdx.x * n;
    float *o = out + (int64_t)blockIdx.x * n;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        float cj = c[j];
        int rank = 0;
        for (int i = 0; i < n; ++i) {
            float ci = c[i];
            rank += (ci > cj || (ci == cj && i < j)) ? 1 : 0;
        }
        bool live = cj != -CUDART_INF_F;
        bool take = k >= 0 ? rank < k : (rank == 0 || cj >= tau);
        o[j] = (live && take) ? 1.f : 0.f;
    }
}
