// compact.cu -- occupancy grid -> CSR spike list (the compaction used by events.cu and forward.cu).
//
// Compaction scheme: per-step occupancy grids, no atomic counter. A producer kernel marks
// spikes in a grid of uint32 words, one row of `words` words per CSR row r = b * T + t - 1
// (mode GPUSNN_GRID_BITS: one bit per id, atomicOr; GPUSNN_GRID_COUNTS: one counter per id,
// atomicAdd). Then
//   1. grid_row_nnz   counts the spikes of each row,
//   2. the host wrapper turns the counts into indptr with an exclusive scan on the device
//      (xp.cumsum) and reads nnz = indptr[-1] to size ids,
//   3. grid_compact   writes each row's ids in increasing id order, so the result is
//      deterministic and equals the reference's sorted CSR; in count mode each id with a
//      nonzero counter is written once with its counter in counts (a coalesced tensor).
#include "common.cuh"

// Launch: 1-D grid-stride over rows, one thread per row (any grid, block 256).
// budget grid_row_nnz: 40 registers
extern "C" __global__ void grid_row_nnz(const unsigned* __restrict__ grid, long long n_rows, int words,
                                        int mode, long long* __restrict__ row_nnz)
{
    GPUSNN_GRID_STRIDE(r, n_rows) {
        const unsigned* row = grid + r * words;
        long long n = 0;
        for (int w = 0; w < words; ++w)
            n += mode == GPUSNN_GRID_BITS ? (long long)__popc(row[w]) : (long long)(row[w] != 0u);
        row_nnz[r] = n;
    }
}

// Launch: 1-D grid-stride over rows, one thread per row (any grid, block 256).
// indptr int64 [n_rows + 1] is the exclusive scan of grid_row_nnz; ids int32 [indptr[n_rows]];
// counts int32 [indptr[n_rows]] is written in count mode only (any pointer in bits mode).
// budget grid_compact: 32 registers
extern "C" __global__ void grid_compact(const unsigned* __restrict__ grid, long long n_rows, int words,
                                        int mode, const long long* __restrict__ indptr,
                                        int* __restrict__ ids, int* __restrict__ counts)
{
    GPUSNN_GRID_STRIDE(r, n_rows) {
        const unsigned* row = grid + r * words;
        long long k = indptr[r];
        for (int w = 0; w < words; ++w) {
            unsigned v = row[w];
            if (mode == GPUSNN_GRID_BITS) {
                while (v) {
                    const int bit = __ffs((int)v) - 1;
                    ids[k++] = w * 32 + bit;
                    v &= v - 1;
                }
            } else if (v) {
                ids[k] = w;
                counts[k++] = (int)v;
            }
        }
    }
}
