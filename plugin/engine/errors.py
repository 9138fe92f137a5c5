"""Errors the engine raises. Every message names the file, layer, band or field at fault.

``field`` is the request field or option keyword an error is about ("steps",
"conditions.s2_l2a", "max_area_km2"...), None when it is about a file or the environment.
Messages never name a command-line flag or a dialog label: each face (the CLI, QGIS) turns
``field`` into its own words with one table of its own (``plugin.commands.flags``,
``plugin.qgisui.errors``).
"""


class CopGenError(Exception):
    """Base class: a problem the user can act on (shown without a traceback).

    ``field``: the request field or option keyword at fault (e.g. "tiling"), for faces that name
    it in their own words; ``message`` is then the bare text and str() is "field: message".
    """

    def __init__(self, message="", field=None):
        super().__init__(message)
        self.message = str(message)
        self.field = field

    def __str__(self):
        return f"{self.field}: {self.message}" if self.field else self.message

    def describe(self, names):
        """The message with the field in a face's words: ``names`` maps fields to them
        (a flag, a parameter label). The most specific entry wins: "conditions.s2_l2a.bands"
        falls back to "conditions.s2_l2a", then "conditions"; unnamed fields show as they are."""
        field = self.field
        while field:
            if field in names:
                return f"{names[field]}: {self.message}"
            field = field.rpartition(".")[0]
        return str(self)


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
