"""Files gpusnn writes and reads: hdf5.py (atomic HDF5 writes, format checks), checkpoint.py
(weights, fractional memory, config, progress), spikelog.py (per-layer spike logs)."""
