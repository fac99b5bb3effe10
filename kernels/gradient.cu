// gradient.cu -- readout, loss, output error, backward deltas and the spike-timing weight
// gradient from per-(sample, input) spike tables (docs/method.md sections 2 and 3).
// Twins: gpusnn.reference.readout, loss_and_delta, backward_deltas, weight_gradient.
// Every float output element is written by exactly one thread, in a fixed order (the suffix
// table's integer atomics add counts: their order does not matter).
#include "common.cuh"

#define GPUSNN_LOSS_CE 0
#define GPUSNN_LOSS_MSE 1

// The weight gradient's window start w[k] and coefficient a[k] of a (b, i) whose output error
// is d: timing: w = window start, a = d / (theta (T - w)); rate: w = 0, a = d / rate_den with
// rate_den = float32(theta * T) from the host. Written by the kernel that computes d
// (readout_loss, backward_delta), so no separate launch is needed; gradient_coeffs is the same
// for a given delta.
__device__ __forceinline__ void gpusnn_coeff(float d, int t_last, int t_prev, int T, float theta, float rate_den,
                                             int timing, long long k, float* __restrict__ a, int* __restrict__ w)
{
    if (timing) {
        const int ws = gpusnn_window_start(t_last, t_prev, T);
        w[k] = ws;
        a[k] = d / (theta * (float)(T - ws));
    } else {
        w[k] = 0;
        a[k] = d / rate_den;
    }
}

// rho = (n + u(T) / theta) / T, the loss of each sample (float64) and delta = dL/drho / n_norm
// (n_norm = B, or the global batch of which these B samples are a part in data-parallel training),
// and the output layer's gradient coefficients a, w from delta (gpusnn_coeff).
// Launch: 1-D grid-stride over samples, one thread per sample b looping over the C classes.
// Arithmetic in double, in the reference's order (rho is rounded to float32 first).
// budget readout_loss: 56 registers
extern "C" __global__ void readout_loss(const int* __restrict__ counts,       // [B, C]
                                        const float* __restrict__ u_final,    // [B, C]
                                        const long long* __restrict__ labels, // [B] 0..C-1
                                        const int* __restrict__ t_last,       // [B, C]
                                        const int* __restrict__ t_prev,       // [B, C]
                                        int B, int n_norm, int C, int T, float theta, int loss_kind,
                                        double temperature, double r_target, float rate_den, int timing,
                                        float* __restrict__ rho,              // [B, C]
                                        double* __restrict__ loss,            // [B]
                                        float* __restrict__ delta,            // [B, C]
                                        float* __restrict__ a,                // [B, C]
                                        int* __restrict__ w)                  // [B, C]
{
    GPUSNN_GRID_STRIDE(b, (long long)B) {
        const long long o = b * C;
        const int y = (int)labels[b];
        double zmax = -1.0e308;  // below any finite z
        for (int k = 0; k < C; ++k) {
            const float q = u_final[o + k] / theta;
            const float r = (float)(((double)counts[o + k] + (double)q) / (double)T);
            rho[o + k] = r;
            zmax = fmax(zmax, (double)r * T / temperature);
        }
        if (loss_kind == GPUSNN_LOSS_CE) {
            double sum = 0.0;
            for (int k = 0; k < C; ++k) sum += exp((double)rho[o + k] * T / temperature - zmax);
            const double lse = log(sum);
            loss[b] = -((double)rho[o + y] * T / temperature - zmax - lse);
            for (int k = 0; k < C; ++k) {
                const double p = exp((double)rho[o + k] * T / temperature - zmax - lse);
                const float d = (float)((p - (k == y)) * T / temperature / n_norm);
                delta[o + k] = d;
                gpusnn_coeff(d, t_last[o + k], t_prev[o + k], T, theta, rate_den, timing, o + k, a, w);
            }
        } else {
            double l = 0.0;
            for (int k = 0; k < C; ++k) {
                const double diff = (double)rho[o + k] - (k == y) * r_target;
                l += diff * diff;
                const float d = (float)(diff / n_norm);
                delta[o + k] = d;
                gpusnn_coeff(d, t_last[o + k], t_prev[o + k], T, theta, rate_den, timing, o + k, a, w);
            }
            loss[b] = 0.5 * l;
        }
    }
}

// delta_j(l) = g_j * sum_i W_next[j, i] * delta_next[b, i] / theta, g_j = 1 where neuron j is
// active ((n > 0 or u(T) > 0) and n < T), else 0; and the layer's gradient coefficients a, w
// from delta (gpusnn_coeff).
// Launch: 1-D grid-stride over B * n_cur, one thread per (b, j), index b * n_cur + j; dense
// in n_next (the deltas are dense), float32 sum in increasing i.
// budget backward_delta: 40 registers
extern "C" __global__ void backward_delta(const float* __restrict__ delta_next,  // [B, n_next]
                                          const float* __restrict__ W_next,      // [n_cur, n_next]
                                          const int* __restrict__ counts,        // [B, n_cur]
                                          const float* __restrict__ u_final,     // [B, n_cur]
                                          const int* __restrict__ t_last,        // [B, n_cur]
                                          const int* __restrict__ t_prev,        // [B, n_cur]
                                          int B, int n_cur, int n_next, int T, float theta,
                                          float rate_den, int timing,
                                          float* __restrict__ delta,             // [B, n_cur]
                                          float* __restrict__ a,                 // [B, n_cur]
                                          int* __restrict__ w)                   // [B, n_cur]
{
    GPUSNN_GRID_STRIDE(k, (long long)B * n_cur) {
        const long long b = k / n_cur;
        const long long j = k - b * n_cur;
        const float* d = delta_next + b * n_next;
        const float* wrow = W_next + j * n_next;
        float s = 0.0f;
        for (int i = 0; i < n_next; ++i) s += d[i] * wrow[i];
        const float gate = ((counts[k] > 0 || u_final[k] > 0.0f) && counts[k] < T) ? 1.0f : 0.0f;
        const float dk = gate * (s / theta);
        delta[k] = dk;
        gpusnn_coeff(dk, t_last[k], t_prev[k], T, theta, rate_den, timing, k, a, w);
    }
}

// Per (b, i): the window start w and the coefficient a of every presynaptic spike in it
// (gpusnn_coeff) from a given delta. A training step does not launch it: readout_loss and
// backward_delta write a and w with delta (gpusnn.backends.gpu.gradient.coefficients).
// Launch: 1-D grid-stride over B * n_post, one thread per (b, i).
// budget gradient_coeffs: 32 registers
extern "C" __global__ void gradient_coeffs(const float* __restrict__ delta,  // [B, n_post]
                                           const int* __restrict__ t_last,   // [B, n_post]
                                           const int* __restrict__ t_prev,   // [B, n_post]
                                           long long n, int T, float theta, float rate_den, int timing,
                                           float* __restrict__ a,            // [B, n_post]
                                           int* __restrict__ w)              // [B, n_post]
{
    GPUSNN_GRID_STRIDE(k, n) {
        gpusnn_coeff(delta[k], t_last[k], t_prev[k], T, theta, rate_den, timing, k, a, w);
    }
}

// Per-(sample, input) tables of the presynaptic spikes, from which the weight gradient reads
// c_bj(w, T], the spikes of input j in sample b after step w (docs/method.md section 3):
//   GPUSNN_TABLE_MASKS   uint32 [n_b, n_pre, width = ceil(T / 32)]: bit (t - 1) & 31 of word
//                        (t - 1) >> 5 set when j spiked at step t (binary spikes, from a grid);
//                        c_bj(w, T] = popcount of the bits at positions >= w
//   GPUSNN_TABLE_SUFFIX  uint32 [n_b, n_pre, width = T]: entry w (0..T-1) holds c_bj(w, T]
//                        (any tensor: repeats and counts add up; from a CSR list)
// A table holds one sample chunk b0 .. b0 + n_b - 1 of the batch (table row b - b0), so its
// memory is bounded whatever B (gpusnn/backends/gpu/gradient.py sizes the chunks).
// Both are dense in (b, j): static shapes, no sort, no host read.
#define GPUSNN_TABLE_MASKS 0
#define GPUSNN_TABLE_SUFFIX 1

// Suffix table of samples b0 .. b0 + n_b - 1 of a CSR spike tensor: every entry (row
// r = b * T + t - 1, id j, count c) adds c to S[b - b0, j, w] for w = 0..t-1 (integer
// atomics: the result does not depend on the order). S must be zeroed before the launch.
// Launch: 1-D grid-stride over the n_b * T rows of the chunk, one thread per row.
// budget suffix_table: 40 registers
extern "C" __global__ void suffix_table(const long long* __restrict__ indptr,  // [B*T+1]
                                        const int* __restrict__ ids,           // [nnz]
                                        const int* __restrict__ entry_counts,  // [nnz] (has_counts)
                                        int has_counts, long long b0, long long n_b, int T, int n_pre,
                                        unsigned* __restrict__ S)              // [n_b, n_pre, T]
{
    GPUSNN_GRID_STRIDE(q, n_b * T) {
        const long long b = q / T;                  // within the chunk
        const int t = (int)(q - b * T) + 1;
        const long long r = b0 * T + q;
        for (long long s = indptr[r]; s < indptr[r + 1]; ++s) {
            const unsigned c = has_counts ? (unsigned)entry_counts[s] : 1u;
            unsigned* row = S + (b * n_pre + ids[s]) * T;
            for (int w = 0; w < t; ++w) atomicAdd(&row[w], c);
        }
    }
}

// Step masks of samples b0 .. b0 + n_b - 1 of a GPUSNN_GRID_BITS occupancy grid (the previous
// layer's output grid, in_words uint32 per row r = b * T + t - 1): masks[b - b0, j, q] bit k =
// bit j of row b * T + 32 q + k. Every word is written (no zeroing needed).
// Launch: 1-D grid-stride over n_b * n_pre, one thread per (b, j), index (b - b0) * n_pre + j
// (a warp reads the same grid word, 32 consecutive bits of it).
// budget grid_masks: 32 registers
extern "C" __global__ void grid_masks(const unsigned* __restrict__ grid,  // [B*T, in_words]
                                      int in_words, long long b0, long long n_b, int T, int n_pre,
                                      unsigned* __restrict__ masks,       // [n_b, n_pre, width]
                                      int width)
{
    GPUSNN_GRID_STRIDE(k, n_b * n_pre) {
        const long long b = k / n_pre;              // within the chunk
        const int j = (int)(k - b * n_pre);
        const unsigned* col = grid + (b0 + b) * T * in_words + (j >> 5);
        for (int q = 0; q < width; ++q) {
            unsigned m = 0u;
            for (int t = 32 * q; t < T && t < 32 * q + 32; ++t)
                m |= ((col[(long long)t * in_words] >> (j & 31)) & 1u) << (t - 32 * q);
            masks[k * width + q] = m;
        }
    }
}

// G[j, i] = sum over b = 0..B-1 of a[b, i] * c_bj(w[b, i], T], one rounded product per sample
// (__fmul_rn), summed in float32 from 0 in increasing b: the float order of
// gpusnn.reference.weight_gradient (its sparse product sums a_bi * c_bj over b in order;
// samples with c = 0 add nothing there either), so the two agree bit for bit.
// One launch adds the samples b0 .. b0 + n_b - 1 of one table chunk: it starts from 0 when
// b0 == 0, else from G as the previous chunk left it (a float32 in memory is the float32 the
// register held), so a batch in any chunks sums in exactly the unchunked order.
// Launch: 1-D grid-stride over n_pre * n_post, one thread per (j, i), index j * n_post + i;
// a warp shares j (the table entries are broadcast) and reads a[b, i..i+31], w[b, i..i+31]
// coalesced. Work n_b x n_pre x n_post (dense in b). Each launch writes G[j, i] once.
// budget weight_gradient: 48 registers
extern "C" __global__ void weight_gradient(const unsigned* __restrict__ table,  // [n_b, n_pre, width]
                                           int table_kind, int width,
                                           const float* __restrict__ a,         // [B, n_post]
                                           const int* __restrict__ w,           // [B, n_post]
                                           long long b0, long long n_b, int n_pre, int n_post,
                                           float* __restrict__ G)               // [n_pre, n_post]
{
    GPUSNN_GRID_STRIDE(k, (long long)n_pre * n_post) {
        const long long j = k / n_post;
        const long long i = k - j * n_post;
        float g = b0 > 0 ? G[k] : 0.0f;
        for (long long b = 0; b < n_b; ++b) {
            const long long bi = (b0 + b) * n_post + i;
            const unsigned* cell = table + (b * n_pre + j) * width;
            const int ws = w[bi];
            unsigned c = 0u;
            if (table_kind == GPUSNN_TABLE_SUFFIX) {
                c = cell[ws];
            } else {
                for (int q = ws >> 5; q < width; ++q)
                    c += __popc(q == (ws >> 5) ? cell[q] & (~0u << (ws & 31)) : cell[q]);
            }
            if (c) g += __fmul_rn(a[bi], (float)c);
        }
        G[k] = g;
    }
}
