// gradient.cu -- readout, loss, output error, backward deltas and the event-driven
// spike-timing weight gradient (docs/method.md sections 2 and 3).
// Twins: gpusnn.reference.readout, loss_and_delta, backward_deltas, weight_gradient.
// No atomics: every output element is written by exactly one thread, in a fixed order.
#include "common.cuh"

#define GPUSNN_LOSS_CE 0
#define GPUSNN_LOSS_MSE 1

// rho = (n + u(T) / theta) / T, the loss of each sample (float64) and delta = dL/drho / n_norm
// (n_norm = B, or the global batch of which these B samples are a part in data-parallel training).
// Launch: 1-D grid-stride over samples, one thread per sample b looping over the C classes.
// Arithmetic in double, in the reference's order (rho is rounded to float32 first).
// budget readout_loss: 56 registers
extern "C" __global__ void readout_loss(const int* __restrict__ counts,       // [B, C]
                                        const float* __restrict__ u_final,    // [B, C]
                                        const long long* __restrict__ labels, // [B] 0..C-1
                                        int B, int n_norm, int C, int T, float theta, int loss_kind,
                                        double temperature, double r_target,
                                        float* __restrict__ rho,              // [B, C]
                                        double* __restrict__ loss,            // [B]
                                        float* __restrict__ delta)            // [B, C]
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
                delta[o + k] = (float)((p - (k == y)) * T / temperature / n_norm);
            }
        } else {
            double l = 0.0;
            for (int k = 0; k < C; ++k) {
                const double diff = (double)rho[o + k] - (k == y) * r_target;
                l += diff * diff;
                delta[o + k] = (float)(diff / n_norm);
            }
            loss[b] = 0.5 * l;
        }
    }
}

// delta_j(l) = g_j * sum_i W_next[j, i] * delta_next[b, i] / theta, g_j = 1 where neuron j is
// active ((n > 0 or u(T) > 0) and n < T), else 0.
// Launch: 1-D grid-stride over B * n_cur, one thread per (b, j), index b * n_cur + j; dense
// in n_next (the deltas are dense), float32 sum in increasing i.
// budget backward_delta: 40 registers
extern "C" __global__ void backward_delta(const float* __restrict__ delta_next,  // [B, n_next]
                                          const float* __restrict__ W_next,      // [n_cur, n_next]
                                          const int* __restrict__ counts,        // [B, n_cur]
                                          const float* __restrict__ u_final,     // [B, n_cur]
                                          int B, int n_cur, int n_next, int T, float theta,
                                          float* __restrict__ delta)             // [B, n_cur]
{
    GPUSNN_GRID_STRIDE(k, (long long)B * n_cur) {
        const long long b = k / n_cur;
        const long long j = k - b * n_cur;
        const float* d = delta_next + b * n_next;
        const float* w = W_next + j * n_next;
        float s = 0.0f;
        for (int i = 0; i < n_next; ++i) s += d[i] * w[i];
        const float gate = ((counts[k] > 0 || u_final[k] > 0.0f) && counts[k] < T) ? 1.0f : 0.0f;
        delta[k] = gate * (s / theta);
    }
}

// Per (b, i): the window start w and the coefficient a of every presynaptic spike in it.
// timing: w = window start, a = delta / (theta (T - w)); rate: w = 0, a = delta / rate_den
// with rate_den = float32(theta * T) from the host.
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
        if (timing) {
            const int ws = gpusnn_window_start(t_last[k], t_prev[k], T);
            w[k] = ws;
            a[k] = delta[k] / (theta * (float)(T - ws));
        } else {
            w[k] = 0;
            a[k] = delta[k] / rate_den;
        }
    }
}

// G[j, i] = sum over the presynaptic entries (b, t) of j with w[b, i] < t of a[b, i], times the
// entry's count (one rounded product) for a coalesced tensor (has_counts = 1).
// Event-driven: the spikes come transposed (CSC over pre neurons: colptr [n_pre + 1], and per
// spike its sample and step, ordered by row b * T + t - 1 within each j), so work =
// presynaptic spikes x fan-out.
// Launch: 1-D grid-stride over n_pre * n_post, one thread per (j, i), index j * n_post + i;
// a warp shares j (spike list broadcast) and reads a[b, i..i+31] coalesced. Summation in
// increasing row order from 0; G is written exactly once (no zeroing needed).
// budget weight_gradient: 48 registers
extern "C" __global__ void weight_gradient(const long long* __restrict__ colptr,  // [n_pre + 1]
                                           const int* __restrict__ sample,        // [nnz] b
                                           const int* __restrict__ step,          // [nnz] t, 1..T
                                           const int* __restrict__ entry_counts,  // [nnz] (has_counts)
                                           int has_counts,
                                           const float* __restrict__ a,           // [B, n_post]
                                           const int* __restrict__ w,             // [B, n_post]
                                           int n_pre, int n_post,
                                           float* __restrict__ G)                 // [n_pre, n_post]
{
    GPUSNN_GRID_STRIDE(k, (long long)n_pre * n_post) {
        const long long j = k / n_post;
        const long long i = k - j * n_post;
        float g = 0.0f;
        for (long long s = colptr[j]; s < colptr[j + 1]; ++s) {
            const long long bi = (long long)sample[s] * n_post + i;
            if (w[bi] < step[s]) g += has_counts ? __fmul_rn(a[bi], (float)entry_counts[s]) : a[bi];
        }
        G[k] = g;
    }
}
