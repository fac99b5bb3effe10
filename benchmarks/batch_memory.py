"""Device memory of one training batch on the GPU backends: a MODEL computed from the array
shapes the code allocates (forward.current_chunks, gradient.table_chunks), not a measurement.

usage: python benchmarks/batch_memory.py --out FILE [--widths 2048,500,11] [--steps 20,64]
       [--batch-sizes 32,128,512,1024] [--density 0.05] [--limit BYTES] [--dense]
Writes FILE (JSON): per (T, B) the bytes of each group of buffers (below), the chunks of the
forward's currents and of each layer's gradient table under the bound (default
forward.CURRENT_BYTES), the unchunked table it replaces, and the modelled peak:

    state      W, W_prev, G_prev and the batch's G of every layer (4 x float32 weights)
    input      the input layer's CSR list at the given density (ids int32, indptr int64),
               or its occupancy grid (the static form of binary input)
    records    per layer counts, t_first, t_last, t_prev (int32), u(T) (float32) [B, n]
    grids      per layer the output occupancy grid uint32 [B*T, ceil(n/32)]
    currents   the forward's reused I buffer [chunk*T, n_post] of the widest layer (one layer
               at a time), plus X [chunk*T, n_pre] on the dense path
    deltas     rho, loss, delta [B, n] of every layer
    coeffs     a, w [B, n] of every layer (readout_loss and backward_delta write them with
               the deltas, before the first weight gradient)
    table      the reused spike-table buffer of the layer whose gradient runs: suffix counts
               uint32 [chunk, n_pre, T] of a CSR input, step masks [chunk, n_pre, ceil(T/32)]
               of a grid

peak = state + input + records + grids + max(currents, deltas + coeffs + table): the forward's
buffers are released before the gradient. CuPy's memory pool keeps released blocks cached,
so its footprint can reach the sum of the two terms instead of their maximum.
"""
from __future__ import annotations

import argparse
import json
import sys
from itertools import pairwise

from gpusnn.backends.gpu import forward
from gpusnn.backends.gpu.compact import GRID_BITS, grid_words
from gpusnn.backends.gpu.forward import current_chunks
from gpusnn.backends.gpu.gradient import table_chunks


def batch_memory(widths: list[int], T: int, B: int, density: float, limit: int, grid_input: bool,
                 dense: bool = False) -> dict:
    """Bytes of each buffer group of one training batch (module docstring) and the chunks."""
    layers = list(pairwise(widths))
    n_in = widths[0]
    nnz = round(density * B * T * n_in)
    input_bytes = (B * T * grid_words(n_in, GRID_BITS) * 4 if grid_input else 4 * nnz + 8 * (B * T + 1))
    currents, tables = [], []
    for l, (n_pre, n_post) in enumerate(layers):
        row = 4 * (n_post + (n_pre if dense else 0))
        chunks = current_chunks(B, T, row, limit)
        currents.append({"chunks": len(chunks), "bytes": chunks[0][1] * T * row if chunks else 0})
        masks = l > 0 or grid_input
        width = (T + 31) // 32 if masks else T
        tc = table_chunks(B, n_pre, width, limit)
        tables.append({"kind": "masks" if masks else "suffix", "chunks": len(tc),
                       "bytes": tc[0][1] * n_pre * width * 4, "unchunked_bytes": B * n_pre * width * 4})
    coeffs = sum(2 * B * n_post * 4 for _, n_post in layers)
    groups = {
        "state": 4 * 4 * sum(a * b for a, b in layers),
        "input": input_bytes,
        "records": sum(5 * B * n * 4 for n in widths[1:]),
        "grids": sum(B * T * grid_words(n, GRID_BITS) * 4 for n in widths[1:]),
        "currents": max(c["bytes"] for c in currents),
        "deltas": sum(B * n * 4 for n in widths[1:]) + B * widths[-1] * 4 + B * 8,
        "coeffs": coeffs,
        "table": max(t["bytes"] for t in tables),
    }
    fixed = groups["state"] + groups["input"] + groups["records"] + groups["grids"]
    gradient_part = groups["deltas"] + groups["coeffs"] + groups["table"]
    return {"T": T, "B": B, "bytes": groups, "currents": currents, "tables": tables,
            "peak_bytes": fixed + max(groups["currents"], gradient_part),
            "pool_bound_bytes": fixed + groups["currents"] + gradient_part,
            "unchunked_table_bytes": max(t["unchunked_bytes"] for t in tables)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--widths", default="2048,500,11")
    p.add_argument("--steps", default="20,64")
    p.add_argument("--batch-sizes", default="32,128,512,1024")
    p.add_argument("--density", type=float, default=0.05)
    p.add_argument("--dense", action="store_true", help="the dense forward path (X buffers) in every layer")
    p.add_argument("--limit", type=int, default=None, help="chunk bound in bytes (default forward.CURRENT_BYTES)")
    args = p.parse_args(argv)
    widths = [int(v) for v in args.widths.split(",")]
    limit = forward.CURRENT_BYTES if args.limit is None else args.limit
    rows = [dict(batch_memory(widths, T, B, args.density, limit, grid, args.dense), input="grid" if grid else "csr")
            for T in (int(v) for v in args.steps.split(",")) for B in (int(v) for v in args.batch_sizes.split(","))
            for grid in (False, True)]
    with open(args.out, "w") as f:
        json.dump({"what": "MODEL of the device memory of one training batch, not a measurement",
                   "forward": "dense" if args.dense else "event",
                   "widths": widths, "density": args.density, "limit_bytes": limit, "rows": rows}, f, indent=1)
    for r in rows:
        print(f"T={r['T']:3d} B={r['B']:5d} {r['input']:4s} peak {r['peak_bytes'] / 1e6:8.1f} MB  "
              f"table {r['bytes']['table'] / 1e6:7.1f} MB (unchunked {r['unchunked_table_bytes'] / 1e6:7.1f} MB, "
              f"{r['tables'][0]['chunks']} chunks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
