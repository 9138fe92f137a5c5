"""Where the comparison sheet of a combinations run goes, and the HTML page that shows it.

A sheet destination left empty or temporary (the dialog's default) is written into the run's
Output folder beside the layers it shows, named after the run: a temporary folder would be
emptied when QGIS closes, and users look for the sheet with the layers.
"""

import html
from pathlib import Path

from qgis.core import QgsProcessingUtils

from .parameters import is_set

SHEET_FILTER = "HTML files (*.html);;PNG files (*.png)"  # HTML first: the Results Viewer opens it


def is_temporary(path):
    """Whether ``path`` lies in QGIS's temporary outputs folder (TEMPORARY_OUTPUT's files)."""
    return Path(path).resolve().is_relative_to(Path(QgsProcessingUtils.tempFolder()).resolve())


def chosen_sheet(algorithm, parameters, context, name):
    """The file the user chose for the sheet destination ``name``; None when left empty or
    temporary (see :func:`sheet_path`)."""
    if is_set(parameters, name):
        chosen = algorithm.parameterAsFileOutput(parameters, name, context)
        if chosen and not is_temporary(chosen):
            return Path(chosen)
    return None


def sheet_path(chosen, out_dir, run_name):
    """The sheet's file: the one ``chosen``, else ``<run>_sheet.html`` in the output folder."""
    return chosen or Path(out_dir) / f"{run_name}_sheet.html"


def sheet_png(sheet):
    """The PNG the sheet is drawn into: the destination itself, or beside an HTML page."""
    return sheet if sheet.suffix.lower() == ".png" else sheet.with_suffix(".png")


def write_sheet_page(page, png, title, words):
    """An HTML page showing the sheet PNG beside it (what the Results Viewer opens)."""
    title = html.escape(title)
    page.write_text(
        f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>\n"
        f"<h1>{title}</h1>\n<p>{html.escape(words)} Generated imagery, not measurements.</p>\n"
        f'<img src="{html.escape(png.name)}" alt="comparison sheet" style="max-width:100%">\n</body></html>\n',
        encoding="utf-8",
    )
