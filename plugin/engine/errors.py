"""Errors the engine raises. Every message names the file, layer, band or parameter at fault."""


class CopGenError(Exception):
    """Base class: a problem the user can act on (shown without a traceback).

    ``field``: the request field or option keyword at fault (e.g. "tiling"), for faces that name
    it in their own words; ``message`` is then the bare text and str() is "field: message".
    """

    def __init__(self, message="", field=None):
        super().__init__(f"{field}: {message}" if field else message)
        self.message = message
        self.field = field


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
