"""What a COP-GEN-Beta condition is before anything is read: ``ConditionSpec`` (one raster for one
modality, how to read it) and the command line's ``MODALITY=FILE[:BANDS]`` form of it."""

import math
import numbers
import re
from dataclasses import dataclass
from typing import Optional

from ..engine.errors import InputError
from ..engine.families.beta.registry import MODALITIES, get_modality
from .s2_offset import S2Offset, detect_s2_offset

SOURCES = ("physical", "thumbnail")
AUTO_OFFSET = "auto"  # s2_offset read from the product's metadata or name


@dataclass(frozen=True)
class ConditionSpec:
    """One conditioning raster for ``modality`` (a key of MODALITIES).

    ``bands``: band names (matched against band descriptions, B4 == B04) or 1-based
    indexes, in the order the rendering needs (B04, B03, B02 / VV, VH / elevation / R, G, B);
    None picks them from descriptions or the usual layouts. ``source``: "physical" or
    "thumbnail". ``s1_in_db``: S1 values are dB, not linear. ``s2_offset``: DN offset to
    subtract (1000 for processing baseline 04.00+), or "auto": read from the product
    (:mod:`.s2_offset`), with why in ``s2_offset_note``. ``layer_name`` names the QGIS layer
    in messages.
    """

    modality: str
    path: str
    bands: Optional[tuple] = None
    source: str = "physical"
    s1_in_db: bool = False
    s2_offset: object = AUTO_OFFSET  # a number, or "auto" (the default of every face)
    layer_name: Optional[str] = None
    s2_offset_note: Optional[str] = None

    def __post_init__(self):
        get_modality(self.modality, "conditions")
        field = f"conditions.{self.modality}"
        if self.source not in SOURCES:
            raise InputError(f"{self.label}: source {self.source!r} must be one of {', '.join(SOURCES)}",
                             field + ".source")
        is_s2 = "s2_offset" in get_modality(self.modality).reading_options
        resolve_s2_offset(self, is_s2 and self.source == "physical", field)
        object.__setattr__(self, "path", str(self.path))
        if self.bands is not None:
            object.__setattr__(self, "bands", band_tokens(self.bands))

    @property
    def label(self):
        """How messages name this condition: the layer (and file), or the file."""
        return f"layer {self.layer_name!r} ({self.path})" if self.layer_name else str(self.path)


def resolve_s2_offset(spec, is_s2_product, field):
    """Resolve a (frozen) spec's ``s2_offset`` in place, the rule of both families' conditions:
    "auto" becomes the offset read from the product when ``is_s2_product`` (a Sentinel-2 raster
    in physical DN), else 0, and ``s2_offset_note`` says why; a given number must be >= 0."""
    if spec.s2_offset == AUTO_OFFSET:
        found = detect_s2_offset(spec.path) if is_s2_product else S2Offset(0, "not a Sentinel-2 product in physical units")
        object.__setattr__(spec, "s2_offset", found.value)
        object.__setattr__(spec, "s2_offset_note", found.reason)
    value = spec.s2_offset
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value >= 0):
        raise InputError(
            f"{spec.label}: s2_offset {spec.s2_offset} must be >= 0 (the DN offset to subtract, "
            "1000 for BOA_ADD_OFFSET = -1000)", field + ".s2_offset"
        )


def describe_s2_offset(spec):
    """How a resolved spec's Sentinel-2 DN offset is told in logs: "DN offset 1000 (why)"."""
    return f"DN offset {spec.s2_offset:g} ({spec.s2_offset_note or 'given'})"


def parse_condition_arg(text, **options):
    """``"s2_l2a=FILE[:B04,B03,B02]"`` -> ConditionSpec; ``options`` are further fields
    (source, s1_in_db, s2_offset). A trailing ``:list`` counts as bands only if its items
    are plain names or numbers, so Windows drive letters and /vsi URLs stay in the path."""
    modality, sep, rest = text.partition("=")
    modality = modality.strip()
    if not sep or not rest or modality not in MODALITIES:
        raise InputError(
            f"{text!r}: expected MODALITY=FILE[:BANDS] with MODALITY one of {', '.join(MODALITIES)}",
            "conditions",
        )
    path, bands = split_bands(rest)
    return ConditionSpec(modality=modality, path=path, bands=bands, **options)


def split_bands(text):
    """("FILE", "B04,B03,B02") of "FILE:B04,B03,B02", (text, None) without a band list. A
    trailing ``:list`` counts as bands only if its items are plain names or numbers, so Windows
    drive letters and /vsi URLs stay in the path."""
    head, _, tail = text.rpartition(":")
    if head and re.fullmatch(r"[A-Za-z0-9]+(,[A-Za-z0-9]+)*", tail):
        return head, tail
    return text, None


def band_tokens(bands):
    items = bands.split(",") if isinstance(bands, str) else list(bands)
    tokens = tuple(str(b).strip() for b in items)
    if not tokens or not all(tokens):
        raise InputError(f"bands {bands!r}: expected names or 1-based indexes separated by commas")
    return tokens
