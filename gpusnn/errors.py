"""The project's exception types, defined at the bottom of the stack in data_tools.errors
(the readers raise them without importing the trainer) and named here for gpusnn's users."""
from data_tools.errors import (
    CheckpointError,
    ConfigError,
    DataFormatError,
    GpusnnError,
    ShapeError,
)

__all__ = ["CheckpointError", "ConfigError", "DataFormatError", "GpusnnError", "ShapeError"]
