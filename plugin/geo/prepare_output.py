"""Writing what the model will see of one condition as a georeferenced GeoTIFF (``prepare``)."""

from pathlib import Path

from ..engine.atomic import remove_leftovers
from ..engine.cancel import check_cancel
from .grid import TargetGrid, raster_lattice
from .output import OutputWriter, provenance_tags

WINDOW = 1024  # pixels a side of the windows rendered and written at a time


def rendering_grid(path, extent=None, crs=None):
    """The 10 m grid of a prepared rendering: the raster's footprint, or ``extent`` (xmin, ymin,
    xmax, ymax in ``crs``) snapped to the raster's own pixel lattice where it has a 10 m one."""
    if extent is None:
        return TargetGrid.from_raster(path)
    lattice = raster_lattice(path)
    return TargetGrid.from_extent(*extent, crs, lattices=[lattice] if lattice else [])


def write_rendering(prepared, grid, path, progress=None, cancel=None):
    """Write ``prepared`` (a PreparedCondition) over ``grid`` to the COG ``path``, window by window.

    ``progress(done, total)`` counts windows; ``cancel()`` returning True stops with Cancelled
    and, like any failure, leaves no file behind (OutputWriter writes to a temporary file)."""
    tags = {**provenance_tags("prepare"), "condition": prepared.describe()}
    blocks = list(grid.blocks(WINDOW))
    remove_leftovers(Path(path).parent)  # of runs killed (kill -9) before they could clean up
    with OutputWriter(path, grid, prepared.modality, tags) as writer:
        for done, (row_off, col_off, height, width) in enumerate(blocks):
            check_cancel(cancel, f"writing {path}")
            rgb, valid = prepared.read_window(row_off, col_off, height, width)
            writer.write_window(row_off, col_off, rgb, valid)
            if progress is not None:
                progress(done + 1, len(blocks))
    return Path(path)
