// events.cu -- raw AEDAT 3.1 polarity payloads, decoded and binned on the device.
//
// The host walks the packet headers only (gpusnn.backends.gpu.events) and uploads the file bytes
// plus one row per polarity packet: first event index pkt_first [n_pkt + 1] (prefix sum of
// eventNumber), byte offset of the payload, eventSize, eventTSOffset and eventTSOverflow.
// Event e lives in the packet p with pkt_first[p] <= e < pkt_first[p + 1] (binary search).
// Bytes are read one at a time (little-endian), so payloads need no alignment.
//
// Decoding (docs/formats.md): valid = data & 1; p = (data >> 1) & 1; y = (data >> 2) & 0x7FFF;
// x = (data >> 17) & 0x7FFF; t = (eventTSOverflow << 31) | int32 timestamp [us].
#include "common.cuh"

__device__ __forceinline__ unsigned gpusnn_le32(const unsigned char* p)
{
    return (unsigned)p[0] | ((unsigned)p[1] << 8) | ((unsigned)p[2] << 16) | ((unsigned)p[3] << 24);
}

// The data word and full timestamp of event e (0 <= e < pkt_first[n_pkt]).
__device__ __forceinline__ void gpusnn_aedat_event(const unsigned char* bytes, const long long* pkt_first,
                                                   const long long* pkt_offset, const int* pkt_size,
                                                   const int* pkt_ts_offset, const int* pkt_overflow,
                                                   int n_pkt, long long e, unsigned* data, long long* t)
{
    int lo = 0, hi = n_pkt - 1;             // last packet with pkt_first[p] <= e
    while (lo < hi) {
        const int mid = (lo + hi + 1) >> 1;
        if (pkt_first[mid] <= e) lo = mid; else hi = mid - 1;
    }
    const unsigned char* ev = bytes + pkt_offset[lo] + (e - pkt_first[lo]) * (long long)pkt_size[lo];
    *data = gpusnn_le32(ev);
    const int ts = (int)gpusnn_le32(ev + pkt_ts_offset[lo]);
    *t = ((long long)pkt_overflow[lo] << 31) | (long long)ts;
}

// Decode every event into tonic-style fields.
// Launch: 1-D grid-stride over the n_events = pkt_first[n_pkt] events, one thread per event.
// budget aedat_decode: 40 registers
extern "C" __global__ void aedat_decode(const unsigned char* __restrict__ bytes,
                                        const long long* __restrict__ pkt_first, const long long* __restrict__ pkt_offset,
                                        const int* __restrict__ pkt_size, const int* __restrict__ pkt_ts_offset,
                                        const int* __restrict__ pkt_overflow, int n_pkt, long long n_events,
                                        short* __restrict__ x, short* __restrict__ y,
                                        unsigned char* __restrict__ p, long long* __restrict__ t,
                                        unsigned char* __restrict__ valid)
{
    GPUSNN_GRID_STRIDE(e, n_events) {
        unsigned data;
        long long ts;
        gpusnn_aedat_event(bytes, pkt_first, pkt_offset, pkt_size, pkt_ts_offset, pkt_overflow, n_pkt, e, &data, &ts);
        valid[e] = data & 1u;
        p[e] = (data >> 1) & 1u;
        y[e] = (short)((data >> 2) & 0x7FFFu);
        x[e] = (short)((data >> 17) & 0x7FFFu);
        t[e] = ts;
    }
}

// Decode, downsample and bin every event into the occupancy grid of B sample windows.
// Input id = (p * H' + y') * W' + x' with x' = x / factor, y' = y / factor, W' = width / factor,
// H' = height / factor (events with x' >= W' or y' >= H' are dropped). Sample b takes the
// events with t0[b] <= t < t0[b] + dur[b] into step ((t - t0) * T) / dur + 1 (int64, clipped to
// 1..T), row b * T + step - 1. Invalid events (valid = 0) are dropped.
// mode GPUSNN_GRID_BITS: atomicOr of bit id (binary spikes); GPUSNN_GRID_COUNTS: atomicAdd on
// counter id (count encoding). The grid [B * T, words] must be zeroed; compact.cu makes the CSR.
// Launch: 1-D grid-stride over events, one thread per event looping over the B windows
// (work = events x windows of one recording, a few dozen at most).
// budget aedat_bin: 48 registers
extern "C" __global__ void aedat_bin(const unsigned char* __restrict__ bytes,
                                     const long long* __restrict__ pkt_first, const long long* __restrict__ pkt_offset,
                                     const int* __restrict__ pkt_size, const int* __restrict__ pkt_ts_offset,
                                     const int* __restrict__ pkt_overflow, int n_pkt, long long n_events,
                                     const long long* __restrict__ t0, const long long* __restrict__ dur,
                                     int B, int T, int width, int height, int factor, int mode,
                                     unsigned* __restrict__ grid, int words)
{
    const int Wd = width / factor, Hd = height / factor;
    GPUSNN_GRID_STRIDE(e, n_events) {
        unsigned data;
        long long ts;
        gpusnn_aedat_event(bytes, pkt_first, pkt_offset, pkt_size, pkt_ts_offset, pkt_overflow, n_pkt, e, &data, &ts);
        const int xd = (int)((data >> 17) & 0x7FFFu) / factor;
        const int yd = (int)((data >> 2) & 0x7FFFu) / factor;
        if (!(data & 1u) || xd >= Wd || yd >= Hd) continue;
        const int id = ((int)((data >> 1) & 1u) * Hd + yd) * Wd + xd;
        for (int b = 0; b < B; ++b) {
            if (ts < t0[b] || ts >= t0[b] + dur[b]) continue;
            gpusnn_grid_mark(grid, (long long)b * T, (ts - t0[b]) * T / dur[b], T, words, id, mode);
        }
    }
}
