"""The project's own exception types (every bad-input error derives from GpusnnError)."""


class GpusnnError(Exception):
    """Base class of every error gpusnn raises on purpose."""


class ConfigError(GpusnnError, ValueError):
    """An option out of range or inconsistent with another option."""


class ShapeError(GpusnnError, ValueError):
    """Arrays whose shapes disagree (weights vs widths, spikes vs inputs, ...)."""


class DataFormatError(GpusnnError, ValueError):
    """A data file that is not what it claims to be. The message names the file and offset."""


class CheckpointError(GpusnnError):
    """A checkpoint or log that cannot be read or written safely."""
