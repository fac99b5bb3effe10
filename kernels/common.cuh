// common.cuh -- helpers shared by every kernel file (device code, no kernels).
// Compiled by NVRTC (cupy.RawModule), nvcc (compile gate) and g++ (gpusnn.cuemu).
#pragma once

// Grid-stride loop over [0, n) with 64-bit indices: any grid covers any n.
#define GPUSNN_GRID_STRIDE(i, n)                                                   \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)gridDim.x * blockDim.x)

// Occupancy grids (one row of `words` uint32 per CSR row r = b * T + t - 1) come in two modes:
//   GPUSNN_GRID_BITS   bit (id % 32) of word id / 32 is set when id spiked (binary spikes)
//   GPUSNN_GRID_COUNTS word id counts the spikes of id in that row (count encoding)
#define GPUSNN_GRID_BITS 0
#define GPUSNN_GRID_COUNTS 1

// Start w of a neuron's current inter-spike window (w, T] (docs/method.md section 2):
// the last spike time, or the one before it when the neuron fired on the last step.
__device__ __forceinline__ int gpusnn_window_start(int t_last, int t_prev, int T)
{
    return t_last == T ? t_prev : t_last;
}

// Mark spike `id` in row r = b * T + bin of an occupancy grid of `words` uint32 per row, after
// clipping bin to 0..T-1 (events exactly at the window's end land in the last step).
__device__ __forceinline__ void gpusnn_grid_mark(unsigned int* grid, long long row0, long long bin, int T,
                                                 long long words, int id, int mode)
{
    bin = bin < 0 ? 0 : (bin >= T ? T - 1 : bin);
    const long long r = row0 + bin;
    if (mode == GPUSNN_GRID_BITS)
        atomicOr(&grid[r * words + (id >> 5)], 1u << (id & 31));
    else
        atomicAdd(&grid[r * words + id], 1u);
}
