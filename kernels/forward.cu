// forward.cu -- event-driven nonleaky integrate-and-fire of one layer over the whole window.
//
// Twin: gpusnn.reference.input_currents + integrate_and_fire (docs/method.md section 1).
// Launch: 1-D grid-stride over B * n_post, one thread per (sample b, post neuron i), index
// b * n_post + i (any grid, block 256). A thread walks t = 1..T; for each presynaptic spike
// j of row r = b * T + t - 1 (CSR order) it adds W[j, i], or count * W[j, i] (one rounded
// product, __fmul_rn: no fused multiply-add) for a coalesced tensor with counts (has_counts
// = 1): one entry reads one row of W, and the 32 threads of a warp read 32 consecutive floats
// of it (coalesced). Work = presynaptic entries x fan-out. The input of a step is summed from
// 0 in CSR order before it is added to u, the same float32 order as the reference's sparse
// product, so results agree bit for bit.
// Output spikes: bit i of the occupancy grid row r (GPUSNN_GRID_BITS, atomicOr); the grid must
// be zeroed before the launch. A hidden layer's grid is the next layer's input as it is
// (if_forward_grid), compacted to CSR by compact.cu only for spike logs and profiles.
#include "common.cuh"

// The integrate-and-fire state of one (sample, post neuron) over the window.
struct GpusnnIfState {
    float u;
    int n, first, last, prev;
};

// Step t of the nonleaky IF neuron i with input current I: fire (reset to 0, set bit i of the
// output grid row `out_row`) when u + I >= theta, else integrate.
__device__ __forceinline__ void gpusnn_if_step(GpusnnIfState& s, float I, int t, float theta, int i,
                                               unsigned* out_row)
{
    const float v = s.u + I;
    if (v >= theta) {
        ++s.n;
        if (!s.first) s.first = t;
        s.prev = s.last;
        s.last = t;
        s.u = 0.0f;
        atomicOr(&out_row[i >> 5], 1u << (i & 31));
    } else {
        s.u = v;
    }
}

// The record of (b, i) at index k = b * n_post + i once the window is done.
__device__ __forceinline__ void gpusnn_if_store(const GpusnnIfState& s, long long k, int* counts, int* t_first,
                                                int* t_last, int* t_prev, float* u_final)
{
    counts[k] = s.n;
    t_first[k] = s.first;
    t_last[k] = s.last;
    t_prev[k] = s.prev;
    u_final[k] = s.u;
}

// budget if_forward: 48 registers
extern "C" __global__ void if_forward(const long long* __restrict__ indptr,  // [B*T+1]
                                      const int* __restrict__ ids,           // [nnz] pre ids
                                      const int* __restrict__ entry_counts,  // [nnz] (has_counts)
                                      int has_counts,
                                      const float* __restrict__ W,           // [n_pre, n_post]
                                      int B, int T, int n_post, float theta,
                                      int* __restrict__ counts,              // [B, n_post]
                                      int* __restrict__ t_first,             // [B, n_post]
                                      int* __restrict__ t_last,              // [B, n_post]
                                      int* __restrict__ t_prev,              // [B, n_post]
                                      float* __restrict__ u_final,           // [B, n_post]
                                      unsigned* __restrict__ grid,           // [B*T, words]
                                      int words)
{
    GPUSNN_GRID_STRIDE(k, (long long)B * n_post) {
        const long long b = k / n_post;
        const int i = (int)(k - b * n_post);
        GpusnnIfState st = {0.0f, 0, 0, 0, 0};
        for (int t = 1; t <= T; ++t) {
            const long long r = b * T + (t - 1);
            float I = 0.0f;
            if (has_counts) {
                for (long long s = indptr[r]; s < indptr[r + 1]; ++s)
                    I += __fmul_rn((float)entry_counts[s], W[(long long)ids[s] * n_post + i]);
            } else {
                for (long long s = indptr[r]; s < indptr[r + 1]; ++s)
                    I += W[(long long)ids[s] * n_post + i];
            }
            gpusnn_if_step(st, I, t, theta, i, grid + r * words);
        }
        gpusnn_if_store(st, k, counts, t_first, t_last, t_prev, u_final);
    }
}

// The same layer driven by the previous layer's occupancy grid (GPUSNN_GRID_BITS, in_words
// uint32 per row r = b * T + t - 1) instead of a CSR list: the set bits of row r are visited
// in increasing id order, the order of a sorted CSR row, so the float32 sums (and the
// results) are bit-identical to if_forward on the compacted grid. Launch as if_forward.
// budget if_forward_grid: 48 registers
extern "C" __global__ void if_forward_grid(const unsigned* __restrict__ in_grid,  // [B*T, in_words]
                                           int in_words,
                                           const float* __restrict__ W,           // [n_pre, n_post]
                                           int B, int T, int n_post, float theta,
                                           int* __restrict__ counts,              // [B, n_post]
                                           int* __restrict__ t_first,             // [B, n_post]
                                           int* __restrict__ t_last,              // [B, n_post]
                                           int* __restrict__ t_prev,              // [B, n_post]
                                           float* __restrict__ u_final,           // [B, n_post]
                                           unsigned* __restrict__ grid,           // [B*T, words]
                                           int words)
{
    GPUSNN_GRID_STRIDE(k, (long long)B * n_post) {
        const long long b = k / n_post;
        const int i = (int)(k - b * n_post);
        GpusnnIfState st = {0.0f, 0, 0, 0, 0};
        for (int t = 1; t <= T; ++t) {
            const long long r = b * T + (t - 1);
            const unsigned* row = in_grid + r * in_words;
            float I = 0.0f;
            for (int q = 0; q < in_words; ++q) {
                for (unsigned v = row[q]; v; v &= v - 1u)
                    I += W[(long long)(q * 32 + __ffs((int)v) - 1) * n_post + i];
            }
            gpusnn_if_step(st, I, t, theta, i, grid + r * words);
        }
        gpusnn_if_store(st, k, counts, t_first, t_last, t_prev, u_final);
    }
}
