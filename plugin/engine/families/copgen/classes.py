"""The two COP-GEN class maps: raster codes, their one-hot channels, names and colours.

The model sees class maps as one-hot channels; the rasters hold codes. The official tables map
each code to a channel (land cover skips the unused codes 3 and 6); codes outside a table are
read as channel 0 (no data / clear), exactly as the official pre-processing does.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassMap:
    """codes[i] is the raster code of channel i; names and colours (#rrggbb) follow the channels."""

    codes: tuple
    names: tuple
    colours: tuple

    @property
    def channels(self):
        return len(self.codes)

    def code_to_channel(self):
        """A 256-entry lookup (uint8 codes) giving each code's channel; unknown codes -> 0."""
        table = np.zeros(256, dtype=np.int64)
        table[list(self.codes)] = np.arange(len(self.codes))
        return table

    def colour_table(self):
        """{code: (name, "#rrggbb")}, for styling a generated raster."""
        return {code: (name, colour) for code, name, colour in
                zip(self.codes, self.names, self.colours)}


# The 10-class annual land cover of Impact Observatory / Esri (the official LULC modality), with
# the colours its public maps use; code 0 (no data) is drawn black.
LULC = ClassMap(
    codes=(0, 1, 2, 4, 5, 7, 8, 9, 10, 11),
    names=("None/NoData", "Water", "Trees", "Flooded Vegetation", "Crops", "Built-up Areas",
           "Bare Ground", "Snow/Ice", "Clouds", "Rangeland"),
    colours=("#000000", "#419bdf", "#397d49", "#7a87c6", "#e49635", "#c4281b", "#a59b8f",
             "#a8ebff", "#616161", "#e3e2c3"),
)

# The Major TOM S2L1C cloud mask: 0 clear, 1 thick cloud, 2 thin cloud, 3 cloud shadow.
CLOUD = ClassMap(
    codes=(0, 1, 2, 3),
    names=("Clear", "Thick", "Thin", "Shadow"),
    colours=("#4caf50", "#ffffff", "#a6cee3", "#3a3a3a"),
)

# The registry's ``processing`` rule -> its class map.
CLASS_MAPS = {"lulc": LULC, "cloud": CLOUD}
