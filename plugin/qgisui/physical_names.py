"""Names of COP-GEN's Processing parameters: a condition raster per sensor, its bands, the date,
the model.

Pure data, shared by the algorithms, the error bridge (..errors) and the layer context action,
which presets them and must not import the algorithms (they need packages that may be missing
while the plugin loads).

A sensor's condition is the raster parameter SENSOR_PARAMETERS[sensor] (e.g. "S2L2A"), with,
as advanced parameters, that name + BANDS (the file's band names in order) and, for
Sentinel-1, that name + IN_DB, for Sentinel-2 that name + DN_OFFSET.
"""

from pathlib import Path

from ..engine.families.copgen.registry import BY_KEY, MODALITIES

# The sensors a raster stands for (plugin.geo.physical_conditions.READ_SENSORS), in the
# order the dialog shows them.
SENSORS = ("s2l2a", "s2l1c", "s1rtc", "dem", "lulc", "cloud")
SENSOR_PARAMETERS = {sensor: sensor.upper() for sensor in SENSORS}
SENSOR_LABELS = {
    "s2l2a": "Sentinel-2 L2A (12 bands, DN)",
    "s2l1c": "Sentinel-2 L1C (13 bands, DN)",
    "s1rtc": "Sentinel-1 RTC (VV, VH)",
    "dem": "DEM (elevation in metres)",
    "lulc": "Land cover (class codes)",
    "cloud": "Sentinel-2 L1C cloud mask (class codes)",
}
BANDS = "_BANDS"
IN_DB = "_IN_DB"
DN_OFFSET = "_DN_OFFSET"
DATE = "DATE"
MODEL = "MODEL"
GENERATE = "GENERATE"


def is_s2(sensor):
    """Whether ``sensor``'s rasters are Sentinel-2 products (a DN offset of their own)."""
    return BY_KEY[next(key for key in MODALITIES if BY_KEY[key].sensor == sensor)].processing == "s2"


def sensor_parameter(sensor):
    """The raster parameter of ``sensor``'s condition: "s2l2a" -> "S2L2A"."""
    return SENSOR_PARAMETERS[sensor]


def modality_label(key):
    """The words the dialog shows for a COP-GEN modality (its registry label)."""
    return BY_KEY[key].label


def generate_options():
    """The options of "Modalities to generate": COP-GEN's twelve modalities, network order."""
    return [modality_label(key) for key in MODALITIES]


def error_fields():
    """{engine field: parameter} of COP-GEN's conditions, date and model (see ..errors)."""
    fields = {DATE.lower(): DATE, MODEL.lower(): MODEL}
    for sensor in SENSORS:
        name = sensor_parameter(sensor)
        fields[f"conditions.{sensor}"] = name
        fields[f"conditions.{sensor}.bands"] = name + BANDS
        if is_s2(sensor):
            fields[f"conditions.{sensor}.s2_offset"] = name + DN_OFFSET
    return fields


# The algorithm that generates with a model of each family: (id, display name).
GENERATE_ALGORITHMS = {
    "cop-gen-beta": ("copgen:generate", "Generate modalities"),
    "cop-gen": ("copgen:generatephysical", "Generate physical layers (COP-GEN)"),
}
FAMILY_LABELS = {"cop-gen-beta": "COP-GEN-Beta", "cop-gen": "COP-GEN"}


def family_of_folder(folder):
    """The family a converted model folder's model.json says; None when it has none to read."""
    from ..engine.errors import ModelError
    from ..engine.families import family_name
    from ..engine.model_folder import read_info

    try:
        return family_name(read_info(Path(folder) / "model.json"))
    except ModelError:
        return None


def other_family_hint(folder, found, wanted):
    """One line: the model in ``folder`` is of family ``found``, not ``wanted``; which algorithm
    generates with it."""
    return (
        f"{folder} holds a {FAMILY_LABELS[found]} model and this algorithm runs {FAMILY_LABELS[wanted]} models; "
        f'use "{GENERATE_ALGORITHMS[found][1]}" for it, or choose a {FAMILY_LABELS[wanted]} model'
    )
