"""Event-camera data for gpusnn: file readers and writers, dataset layouts, the HDF5 event
store, the synthetic DVS128 Gesture generator and the encoder to the sparse spike tensor.

Events everywhere are tonic-style structured arrays (see :mod:`data_tools.events`).
"""
from data_tools.events import DVS128_SENSOR, EVENT_DTYPE, GESTURE_CLASSES, make_events

__all__ = ["EVENT_DTYPE", "DVS128_SENSOR", "GESTURE_CLASSES", "make_events"]
