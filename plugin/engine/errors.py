"""Errors the engine raises. Every message names the file, layer, band or parameter at fault."""


class CopGenError(Exception):
    """Base class: a problem the user can act on (shown without a traceback)."""


class CheckpointError(CopGenError):
    """A checkpoint file is unreadable, unsafe, truncated or not in a known layout."""


class ModelError(CopGenError):
    """A converted model folder is missing, incomplete or does not match its model.json."""


class InputError(CopGenError):
    """Bad user input: modalities, shapes, rasters, bands, areas."""


class DownloadError(CopGenError):
    """A download failed or its checksum did not match."""


class Cancelled(CopGenError):
    """The user cancelled the run; partial outputs have been removed."""
