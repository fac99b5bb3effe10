// encode.cu -- a batch of decoded events (x, y, p, t per event) -> occupancy grid of the spike
// tensor, on the device (binary: the SpikeGrid itself; count mode: compact.cu's grid_compact then makes the coalesced CSR).
//
// Twin: data_tools.encode.encode (the encoding convention stated there, kept exactly):
// id = (p * H' + y') * W' + x' with x' = x / factor, y' = y / factor, W' = width / factor,
// H' = height / factor; events with x' >= W' or y' >= H' are dropped. Times are re-based per
// sample (0 <= t < duration). Binning GPUSNN_BIN_DURATION: bin = (t * T) / max(duration, 1);
// GPUSNN_BIN_COUNT: event k of the sample's n events (time order) goes to bin (k * T) / n;
// bins clipped to 0..T-1, row = b * T + bin.
//
// The batch's samples are read in place from a larger event array (the whole store uploaded
// once, or one batch's events): batch sample b is source sample samples[b], whose events are
// src_offsets[samples[b]] .. src_offsets[samples[b] + 1]; batch_offsets [B + 1] is the
// exclusive scan of their lengths, so thread e of 0..batch_offsets[B] - 1 handles event
// e - batch_offsets[b] of batch sample b (b found by binary search).
// mode GPUSNN_GRID_BITS: atomicOr of bit id (binary encoding); GPUSNN_GRID_COUNTS: atomicAdd
// on counter id (count encoding), and the event that finds its counter at 0 (the first of its
// (row, id) entry) adds 1 to row_entries[r + 1], so row_entries [B * T + 1] (zeroed; entry 0
// stays 0) holds each row's coalesced entries and its inclusive scan is the CSR indptr that
// grid_compact (compact.cu) fills (no grid_row_nnz pass; row_entries is unused, any pointer, in
// bits mode). The grid [B * T, words] must be zeroed. The result does not depend on thread
// order (bitwise or / integer sums commute; which event sees 0 does not change the counts).
// Launch: 1-D grid-stride over the batch's events, one thread per event.
#include "common.cuh"

#define GPUSNN_BIN_DURATION 0
#define GPUSNN_BIN_COUNT 1

// budget bin_events: 48 registers
extern "C" __global__ void bin_events(const short* __restrict__ x, const short* __restrict__ y,
                                      const unsigned char* __restrict__ p, const long long* __restrict__ t,
                                      const long long* __restrict__ src_offsets,    // [S + 1]
                                      const long long* __restrict__ samples,        // [B] in 0..S-1
                                      const long long* __restrict__ batch_offsets,  // [B + 1]
                                      const long long* __restrict__ durations,      // [S] (us)
                                      long long n_events, int B, int T, int width, int height,
                                      int factor, int binning, int mode,
                                      unsigned* __restrict__ grid, int words,
                                      long long* __restrict__ row_entries)  // [B * T + 1]
{
    const int Wd = width / factor, Hd = height / factor;
    GPUSNN_GRID_STRIDE(e, n_events) {
        int lo = 0, hi = B - 1;              // last batch sample with batch_offsets[b] <= e
        while (lo < hi) {
            const int mid = (lo + hi + 1) >> 1;
            if (batch_offsets[mid] <= e) lo = mid; else hi = mid - 1;
        }
        const long long s = samples[lo];
        const long long k = e - batch_offsets[lo];
        const long long src = src_offsets[s] + k;
        const int xd = (int)x[src] / factor;
        const int yd = (int)y[src] / factor;
        if (x[src] < 0 || y[src] < 0 || xd >= Wd || yd >= Hd) continue;
        const int id = ((int)(p[src] != 0) * Hd + yd) * Wd + xd;
        long long bin;
        if (binning == GPUSNN_BIN_DURATION) {
            const long long d = durations[s] > 1 ? durations[s] : 1;
            bin = t[src] * T / d;
        } else {
            bin = k * T / (batch_offsets[lo + 1] - batch_offsets[lo]);
        }
        bin = bin < 0 ? 0 : (bin >= T ? T - 1 : bin);
        const long long r = (long long)lo * T + bin;
        if (mode == GPUSNN_GRID_BITS)
            atomicOr(&grid[r * words + (id >> 5)], 1u << (id & 31));
        else if (atomicAdd(&grid[r * words + id], 1u) == 0u)
            atomicAdd((unsigned long long*)&row_entries[r + 1], 1ull);
    }
}
