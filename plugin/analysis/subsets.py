"""Which conditioning subsets a COP-GEN combinations run tries, as the user wrote them.

Twelve modalities make 4095 non-empty subsets, so the user names the subsets: ``;`` between
subsets, ``+`` (or ``,``) between the names inside one, each name a sensor (``s2l2a``,
``dem``...) or an official key (``S2L2A_B02_B03_B04_B08``) of the real rasters given; ``none``
is the unconditional run, ``all`` every real raster at once. Example:
``none; s2l2a; S2L2A_B02_B03_B04_B08; s1rtc+dem; all``. Left empty: none, each real raster
alone, and all of them. More than :data:`MAX_SUBSETS` is refused, never cut short silently.
"""

from ..engine.errors import InputError
from ..engine.families.copgen.registry import BY_KEY, IMAGE_MODALITIES, MODALITIES, SENSORS, expand_names

FIELD = "subsets"
MAX_SUBSETS = 32
NONE, ALL = "none", "all"


def parse_subsets(text, given_keys, default_names=()):
    """The subsets of ``text`` as tuples of official keys in network order, in the order
    written, without repeats. ``given_keys``: the keys the real rasters fill;
    ``default_names``: one name per real raster (for the default). InputError (field
    ``subsets``) naming the subset at fault."""
    given_keys = tuple(key for key in MODALITIES if key in set(given_keys))
    if text is None or not str(text).strip():
        written = [NONE, *default_names] + ([ALL] if len(default_names) > 1 else [])
    else:
        written = [part.strip() for part in str(text).split(";")]
    subsets = []
    for number, part in enumerate(written, 1):
        keys = _subset_keys(part, number, given_keys)
        if keys not in subsets:
            subsets.append(keys)
    if len(subsets) > MAX_SUBSETS:
        raise InputError(f"{len(subsets)} subsets; at most {MAX_SUBSETS} per run (twelve modalities make 4095 "
                         "subsets: name the ones to compare)", FIELD)
    return subsets


def _subset_keys(part, number, given_keys):
    names = [name.strip() for name in part.replace(",", "+").split("+")]
    if not part or not all(names):
        raise InputError(f"subset {number} ({part!r}) is empty; write 'none' for the unconditional run", FIELD)
    if [name.lower() for name in names] == [NONE]:
        return ()
    if [name.lower() for name in names] == [ALL]:
        return given_keys
    keys = set()
    for name in names:
        named = expand_names([_known(name, number)], FIELD)
        missing = [key for key in named if key not in given_keys]
        if missing:
            raise InputError(f"subset {number} ({part}) names {name}, but no real raster gives "
                             f"{', '.join(missing)}", FIELD)
        keys.update(named)
    return tuple(key for key in MODALITIES if key in keys)


def _known(name, number):
    """The registry's spelling of a sensor or key (sensors in lower case, keys as written)."""
    if name.lower() in SENSORS:
        return name.lower()
    match = next((key for key in MODALITIES if key.lower() == name.lower()), None)
    if match is None:
        raise InputError(f"subset {number}: unknown name {name!r}; use sensors ({', '.join(SENSORS)}), official "
                         "keys, 'none' or 'all'", FIELD)
    return match


def generated_keys(subset, targets=None):
    """What one combination generates: ``targets`` (official keys; None: every image
    modality) less what the subset gives. InputError when the user's own ``targets`` include
    a given modality, or nothing is left."""
    if targets is not None:
        both = [key for key in subset if key in targets]
        if both:
            raise InputError(f"the subset {subset_label(subset)} gives {', '.join(both)}, which is also to be "
                             "generated: leave it out of one of them", FIELD)
    wanted = IMAGE_MODALITIES if targets is None else targets
    left = tuple(key for key in wanted if key not in subset)
    if not left:
        raise InputError(f"the subset {subset_label(subset)} leaves nothing to generate", FIELD)
    return left


def subset_label(subset):
    """"GIVEN S2L2A + DEM" (a sensor's complete groups by the sensor's name, other groups by
    sensor and resolution: "S2L2A 10M"), or "UNCONDITIONAL"."""
    if not subset:
        return "UNCONDITIONAL"
    return "GIVEN " + " + ".join(short_label(name) for name in compact_names(subset))


def short_label(name):
    """A sensor or key in the sheet's capitals: "S2L2A", "S2L2A 10M" (one group of several)."""
    if name in SENSORS:
        return name.upper()
    record = BY_KEY[name]
    several = len(SENSORS[record.sensor]) > 1
    return record.sensor.upper() + (f" {record.resolution_m:g}M" if several else "")


def compact_names(keys):
    """Sensor names for complete sensors, official keys for the rest, in network order."""
    names, keys = [], set(keys)
    for key in MODALITIES:
        if key not in keys:
            continue
        sensor = BY_KEY[key].sensor
        if set(SENSORS[sensor]) <= keys:
            if sensor not in names:
                names.append(sensor)
        else:
            names.append(key)
    return names
