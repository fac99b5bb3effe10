// update.cu -- the fractional-order weight update, in place, one pass over W
// (docs/method.md section 4). Twin: gpusnn.reference.fractional_update plus the W_prev / G_prev
// bookkeeping of the numpy backend.
//
//   step 0:  W <- W - lr G
//   step k:  W <- W - lr g (base ** (1 - alpha)) / Gamma(2 - alpha), factor clipped,
//            base = |W - W_prev| + eps, or |W - W_prev + eps| with eps_inside,
//            g = G, or G_prev with grad_prev (grad_at = "previous")
//   then W is clamped to [-w_max, w_max] (has_wmax), W_prev <- old W, G_prev <- G (keep_gprev).
// Every product and sum is rounded on its own (__fmul_rn etc.: no FMA contraction), in the
// reference's order, so alpha = 1 is plain gradient descent bit for bit and only powf may
// differ from NumPy (by an ulp or two). NaN propagates like np.minimum / np.clip.
// Launch: 1-D grid-stride over the n weights, one thread per weight (any grid, block 256).
// G_prev may alias G when keep_gprev = 0 and grad_prev = 0 (then it is never touched).
#include "common.cuh"

// budget fractional_update: 40 registers
extern "C" __global__ void fractional_update(float* __restrict__ W, float* __restrict__ W_prev,
                                             const float* G, float* G_prev, long long n, int step,
                                             float lr, float one_minus_alpha, float inv_gamma, float eps,
                                             int eps_inside, int grad_prev, int keep_gprev,
                                             int has_clip, float factor_clip, int has_wmax, float w_max)
{
    GPUSNN_GRID_STRIDE(k, n) {
        const float w = W[k];
        const float g = G[k];
        float nw;
        if (step == 0) {
            nw = __fsub_rn(w, __fmul_rn(lr, g));
        } else {
            const float gg = grad_prev ? G_prev[k] : g;
            const float diff = __fsub_rn(w, W_prev[k]);
            const float base = eps_inside ? fabsf(__fadd_rn(diff, eps)) : __fadd_rn(fabsf(diff), eps);
            float factor = __fmul_rn(powf(base, one_minus_alpha), inv_gamma);
            if (has_clip && factor > factor_clip) factor = factor_clip;
            nw = __fsub_rn(w, __fmul_rn(__fmul_rn(lr, gg), factor));
        }
        if (has_wmax) nw = nw > w_max ? w_max : (nw < -w_max ? -w_max : nw);
        W_prev[k] = w;
        if (keep_gprev) G_prev[k] = g;
        W[k] = nw;
    }
}
