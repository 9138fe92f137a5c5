"""The comparison sheet: one row per conditioning combination, real renderings on the left
(the given ones framed), generated renderings on the right, written as a PNG with GDAL."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal

from ..engine.atomic import atomic_path
from ..engine.errors import InputError
from ..engine.families.beta.registry import MODALITIES
from .font import GLYPH_HEIGHT, text_mask

MARGIN = 8
GROUP_GAP = 24
FRAME = 4
TEXT_SCALE = 2
BACKGROUND = (245, 245, 245)
EMPTY_CELL = (70, 70, 70)
INK = (20, 20, 20)
CONDITION_COLOUR = (0, 170, 60)


@dataclass(frozen=True)
class SheetRow:
    """``real`` and ``generated`` map modality keys to uint8 renderings [3, h, w]."""

    label: str
    real: dict
    generated: dict
    conditions: tuple = ()


def short_name(modality):
    return modality.upper().replace("_", " ")


def render_sheet(rows, columns=MODALITIES, cell=128, labels=None):
    """The sheet as a uint8 image [3, height, width]; ``labels``: {column: header text}
    (default: the modality key in capitals)."""
    labels = labels or {}
    if not rows:
        raise InputError("a comparison sheet needs at least one row")
    line = GLYPH_HEIGHT * TEXT_SCALE
    label_width = max(text_mask(row.label, TEXT_SCALE).shape[1] for row in rows) + 2 * MARGIN
    group_width = len(columns) * (cell + MARGIN)
    header = 2 * (line + MARGIN) + MARGIN
    legend = line + 2 * MARGIN
    height = header + len(rows) * (cell + MARGIN) + legend
    width = label_width + 2 * group_width + GROUP_GAP + MARGIN
    sheet = np.empty((3, height, width), np.uint8)
    sheet[:] = np.array(BACKGROUND, np.uint8)[:, None, None]

    real_left = label_width
    generated_left = label_width + group_width + GROUP_GAP
    _draw_text(sheet, "REAL", MARGIN, real_left)
    _draw_text(sheet, "GENERATED", MARGIN, generated_left)
    for index, modality in enumerate(columns):
        for left in (real_left, generated_left):
            _draw_text(sheet, labels.get(modality) or short_name(modality), MARGIN + line + MARGIN,
                       left + index * (cell + MARGIN))

    for row_index, row in enumerate(rows):
        top = header + row_index * (cell + MARGIN)
        _draw_text(sheet, row.label, top + (cell - line) // 2, MARGIN)
        for index, modality in enumerate(columns):
            real_cell = (top, real_left + index * (cell + MARGIN))
            generated_cell = (top, generated_left + index * (cell + MARGIN))
            _draw_image(sheet, row.real.get(modality), real_cell, cell)
            if modality in row.conditions:
                _draw_frame(sheet, real_cell, cell)
                _draw_image(sheet, None, generated_cell, cell)
                given_width = text_mask("GIVEN", TEXT_SCALE).shape[1]
                _draw_text(
                    sheet,
                    "GIVEN",
                    top + (cell - line) // 2,
                    generated_cell[1] + (cell - given_width) // 2,
                    colour=BACKGROUND,
                )
            else:
                _draw_image(sheet, row.generated.get(modality), generated_cell, cell)

    legend_top = height - legend + MARGIN
    sheet[:, legend_top : legend_top + line, MARGIN : MARGIN + line] = np.array(CONDITION_COLOUR, np.uint8)[
        :, None, None
    ]
    _draw_text(sheet, "= CONDITION GIVEN TO THE MODEL", legend_top, 2 * MARGIN + line)
    return sheet


def write_sheet(rows, path, columns=MODALITIES, cell=128, labels=None):
    """Render and write the sheet as a PNG (atomically); returns the path."""
    path = Path(path)
    sheet = render_sheet(rows, columns, cell, labels)
    memory = gdal.GetDriverByName("MEM").Create("", sheet.shape[2], sheet.shape[1], 3, gdal.GDT_Byte)
    for band_index, band in enumerate(sheet, start=1):
        memory.GetRasterBand(band_index).WriteArray(band)
    with atomic_path(path) as temporary:
        written = gdal.GetDriverByName("PNG").CreateCopy(str(temporary), memory)
        if written is None:
            raise InputError(f"cannot write the comparison sheet {path}: {gdal.GetLastErrorMsg()}")
        written = None  # closing flushes the file
    return path


def fit(image, cell):
    """Nearest-neighbour resize of [3, h, w] (or grey [h, w]) into a cell, keeping the aspect."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[None], 3, axis=0)
    if image.dtype != np.uint8 or image.shape[0] != 3:
        raise InputError(f"sheet images must be uint8 RGB [3, h, w], got {image.dtype} {image.shape}")
    height, width = image.shape[1:]
    scale = cell / max(height, width)
    new_height, new_width = max(1, round(height * scale)), max(1, round(width * scale))
    rows = np.minimum((np.arange(new_height) + 0.5) / scale, height - 1).astype(int)
    cols = np.minimum((np.arange(new_width) + 0.5) / scale, width - 1).astype(int)
    return image[:, rows][:, :, cols]


def _draw_image(sheet, image, corner, cell):
    top, left = corner
    sheet[:, top : top + cell, left : left + cell] = np.array(EMPTY_CELL, np.uint8)[:, None, None]
    if image is None:
        return
    fitted = fit(image, cell)
    height, width = fitted.shape[1:]
    top += (cell - height) // 2
    left += (cell - width) // 2
    sheet[:, top : top + height, left : left + width] = fitted


def _draw_frame(sheet, corner, cell):
    top, left = corner
    colour = np.array(CONDITION_COLOUR, np.uint8)[:, None, None]
    sheet[:, top : top + FRAME, left : left + cell] = colour
    sheet[:, top + cell - FRAME : top + cell, left : left + cell] = colour
    sheet[:, top : top + cell, left : left + FRAME] = colour
    sheet[:, top : top + cell, left + cell - FRAME : left + cell] = colour


def _draw_text(sheet, text, top, left, colour=INK):
    mask = text_mask(text, TEXT_SCALE)
    height = min(mask.shape[0], sheet.shape[1] - top)
    width = min(mask.shape[1], sheet.shape[2] - left)
    region = sheet[:, top : top + height, left : left + width]
    region[:, mask[:height, :width]] = np.array(colour, np.uint8)[:, None]
