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
// Output spikes: bit i of the occupancy grid row r (GPUSNN_GRID_BITS, atomicOr), compacted to
// CSR by compact.cu; the grid must be zeroed before the launch.
#include "common.cuh"

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
        float u = 0.0f;
        int n = 0, first = 0, last = 0, prev = 0;
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
            const float v = u + I;
            if (v >= theta) {
                ++n;
                if (!first) first = t;
                prev = last;
                last = t;
                u = 0.0f;
                atomicOr(&grid[r * words + (i >> 5)], 1u << (i & 31));
            } else {
                u = v;
            }
        }
        counts[k] = n;
        t_first[k] = first;
        t_last[k] = last;
        t_prev[k] = prev;
        u_final[k] = u;
    }
}
