// forward.cu -- nonleaky integrate-and-fire of one layer over the whole window, in two kernels.
//
// Twin: gpusnn.reference.input_currents + integrate_and_fire (docs/method.md section 1).
//
// Kernel A computes the input currents I [rows, n_post] float32 of a run of CSR rows
// r = b * T + t - 1 (rows r0 .. r0 + n_rows - 1; I row r - r0): one block per row (grid-stride
// over rows by blocks, any grid, block a multiple of 32 up to 1024). The block stages the
// row's presynaptic ids (and counts) in shared memory, GPUSNN_STAGE entries at a time, and
// its threads run over post neurons i, adding W[j, i] (or one rounded product count * W[j, i],
// __fmul_rn, no fused multiply-add) for each staged entry j: a warp reads 32 consecutive
// floats of row j (coalesced). Each I[r, i] is summed from 0 in the row's CSR order (a
// partial sum goes through I between stages unchanged), the same float32 order as the
// reference's sparse product, so results agree bit for bit. The block also zeroes the row
// of the layer's output grid (out_grid, out_words per row) that if_scan marks next, so the
// grid needs no memset launch. Two input layouts:
//   currents_csr   indptr int64 [B*T+1], ids int32 [nnz] (+ counts int32 [nnz]);
//   currents_grid  an occupancy bit grid uint32 [B*T, words] (compact.cu's GPUSNN_GRID_BITS:
//                  bit j & 31 of word j >> 5), its set bits read in increasing j (the order
//                  compact.cu would write them), so a hidden layer needs no compaction.
// scatter_dense (from CSR) and scatter_grid (from a bit grid) write the dense input
// X [rows, n_pre] float32 (counts as values) for the GEMM path I = X @ W (cuBLAS / NumPy;
// another float order: see docs/kernels.md).
//
// Kernel B, if_scan, one thread per (sample b, post neuron i) of samples b0 .. b0 + n_b - 1
// (1-D grid-stride, any grid, block 256), walks t = 1..T over I (local row (b - b0) * T + t - 1;
// coalesced over i) and writes counts, t_first, t_last, t_prev, u(T) at [b, i] and the output
// spikes as bit i of the occupancy grid row b * T + t - 1 (GPUSNN_GRID_BITS, atomicOr; the
// grid rows must be zeroed before the launch: kernel A zeroes the rows it computes (out_grid),
// the dense path zeroes the grid first). A hidden layer's grid is the next layer's input as
// it is (currents_grid), compacted to CSR by compact.cu only for spike logs and profiles.
#include "common.cuh"

// entries staged in shared memory per pass (the grid kernel stages GPUSNN_STAGE / 32 words)
#define GPUSNN_STAGE 1024

// The staged entries s_ids[0..n) (counts s_cnt when has_counts) added to I row `out` for every
// post neuron of this thread; `first` = the row's first stage (start from 0, else from I).
__device__ __forceinline__ void gpusnn_add_stage(const int* s_ids, const int* s_cnt, int n, int has_counts,
                                                 const float* __restrict__ W, int n_post,
                                                 float* __restrict__ out, int first)
{
    for (int i = threadIdx.x; i < n_post; i += blockDim.x) {
        float acc = first ? 0.0f : out[i];
        if (has_counts) {
            for (int k = 0; k < n; ++k)
                acc += __fmul_rn((float)s_cnt[k], W[(long long)s_ids[k] * n_post + i]);
        } else {
            for (int k = 0; k < n; ++k)
                acc += W[(long long)s_ids[k] * n_post + i];
        }
        out[i] = acc;
    }
}

// Zero the output grid's row `row` (out_words uint32) by the block's threads: kernel A visits
// every row of the chunk that if_scan then marks, so the grid needs no separate zeroing
// (out_grid may be null with out_words 0: nothing to zero).
__device__ __forceinline__ void gpusnn_zero_row(unsigned* __restrict__ out_grid, int out_words, long long row)
{
    for (int w = threadIdx.x; w < out_words; w += blockDim.x) out_grid[row * out_words + w] = 0u;
}

// budget currents_csr: 40 registers
extern "C" __global__ void currents_csr(const long long* __restrict__ indptr,  // [B*T+1]
                                        const int* __restrict__ ids,           // [nnz] pre ids
                                        const int* __restrict__ entry_counts,  // [nnz] (has_counts)
                                        int has_counts,
                                        const float* __restrict__ W,           // [n_pre, n_post]
                                        long long r0, long long n_rows, int n_post,
                                        float* __restrict__ I,                 // [n_rows, n_post]
                                        unsigned* __restrict__ out_grid,       // [B*T, out_words]
                                        int out_words)
{
    __shared__ int s_ids[GPUSNN_STAGE];
    __shared__ int s_cnt[GPUSNN_STAGE];
    for (long long lr = blockIdx.x; lr < n_rows; lr += gridDim.x) {
        gpusnn_zero_row(out_grid, out_words, r0 + lr);
        const long long begin = indptr[r0 + lr], end = indptr[r0 + lr + 1];
        long long s0 = begin;
        do {   // at least one pass, so an empty row writes its zeros
            const int n = (int)(end - s0 < GPUSNN_STAGE ? end - s0 : GPUSNN_STAGE);
            for (int k = threadIdx.x; k < n; k += blockDim.x) {
                s_ids[k] = ids[s0 + k];
                if (has_counts) s_cnt[k] = entry_counts[s0 + k];
            }
            __syncthreads();
            gpusnn_add_stage(s_ids, s_cnt, n, has_counts, W, n_post, I + lr * n_post, s0 == begin);
            __syncthreads();   // the stage is reused
            s0 += n;
        } while (s0 < end);
    }
}

// budget currents_grid: 48 registers
extern "C" __global__ void currents_grid(const unsigned* __restrict__ grid,  // [B*T, words] bits
                                         int words,
                                         const float* __restrict__ W,        // [n_pre, n_post]
                                         long long r0, long long n_rows, int n_post,
                                         float* __restrict__ I,              // [n_rows, n_post]
                                         unsigned* __restrict__ out_grid,    // [B*T, out_words]
                                         int out_words)
{
    constexpr int STAGE_WORDS = GPUSNN_STAGE / 32;
    __shared__ int s_ids[GPUSNN_STAGE];
    __shared__ int s_pop[STAGE_WORDS];
    for (long long lr = blockIdx.x; lr < n_rows; lr += gridDim.x) {
        gpusnn_zero_row(out_grid, out_words, r0 + lr);
        const unsigned* row = grid + (r0 + lr) * words;
        int w0 = 0;
        do {   // at least one pass, so an empty row writes its zeros
            const int nw = words - w0 < STAGE_WORDS ? words - w0 : STAGE_WORDS;
            const int w = threadIdx.x;
            const unsigned v = w < nw ? row[w0 + w] : 0u;
            if (w < STAGE_WORDS) s_pop[w] = __popc(v);
            __syncthreads();
            if (w < nw) {   // this word's ids go after those of the words before it
                int k = 0;
                for (int p = 0; p < w; ++p) k += s_pop[p];
                for (unsigned m = v; m; m &= m - 1)
                    s_ids[k++] = (w0 + w) * 32 + __ffs((int)m) - 1;
            }
            int n = 0;
            for (int p = 0; p < STAGE_WORDS; ++p) n += s_pop[p];
            __syncthreads();
            gpusnn_add_stage(s_ids, s_ids, n, 0, W, n_post, I + lr * n_post, w0 == 0);
            __syncthreads();   // s_pop and s_ids are reused
            w0 += nw;
        } while (w0 < words);
    }
}

// Launch: 1-D grid-stride over rows r0 .. r0 + n_rows - 1, one thread per row (any grid,
// block 256); X [n_rows, n_pre] must be zeroed. Repeated ids of a row add up (one thread per
// row: no race).
// budget scatter_dense: 40 registers
extern "C" __global__ void scatter_dense(const long long* __restrict__ indptr, const int* __restrict__ ids,
                                         const int* __restrict__ entry_counts, int has_counts,
                                         long long r0, long long n_rows, int n_pre,
                                         float* __restrict__ X)
{
    GPUSNN_GRID_STRIDE(lr, n_rows) {
        float* x = X + lr * n_pre;
        for (long long s = indptr[r0 + lr]; s < indptr[r0 + lr + 1]; ++s)
            x[ids[s]] += has_counts ? (float)entry_counts[s] : 1.0f;
    }
}

// Launch: 1-D grid-stride over the words of rows r0 .. r0 + n_rows - 1, one thread per
// (row, word) (any grid, block 256); X [n_rows, n_pre] must be zeroed; bits at j >= n_pre
// must be 0 (SpikeGrid's convention).
// budget scatter_grid: 40 registers
extern "C" __global__ void scatter_grid(const unsigned* __restrict__ grid, int words,
                                        long long r0, long long n_rows, int n_pre,
                                        float* __restrict__ X)
{
    GPUSNN_GRID_STRIDE(k, n_rows * words) {
        const long long lr = k / words;
        const int w = (int)(k - lr * words);
        for (unsigned m = grid[(r0 + lr) * words + w]; m; m &= m - 1)
            X[lr * n_pre + w * 32 + __ffs((int)m) - 1] = 1.0f;
    }
}

// budget if_scan: 40 registers
extern "C" __global__ void if_scan(const float* __restrict__ I,       // [n_b * T, n_post] local rows
                                   long long b0, long long n_b, int T, int n_post, float theta,
                                   int* __restrict__ counts,          // [B, n_post]
                                   int* __restrict__ t_first,         // [B, n_post]
                                   int* __restrict__ t_last,          // [B, n_post]
                                   int* __restrict__ t_prev,          // [B, n_post]
                                   float* __restrict__ u_final,       // [B, n_post]
                                   unsigned* __restrict__ grid,       // [B*T, words]
                                   int words)
{
    GPUSNN_GRID_STRIDE(k, n_b * n_post) {
        const long long lb = k / n_post;
        const int i = (int)(k - lb * n_post);
        const long long b = b0 + lb;
        float u = 0.0f;
        int n = 0, first = 0, last = 0, prev = 0;
        for (int t = 1; t <= T; ++t) {
            const float v = u + I[(lb * T + (t - 1)) * n_post + i];
            if (v >= theta) {
                ++n;
                if (!first) first = t;
                prev = last;
                last = t;
                u = 0.0f;
                atomicOr(&grid[(b * T + (t - 1)) * words + (i >> 5)], 1u << (i & 31));
            } else {
                u = v;
            }
        }
        const long long o = b * n_post + i;
        counts[o] = n;
        t_first[o] = first;
        t_last[o] = last;
        t_prev[o] = prev;
        u_final[o] = u;
    }
}
