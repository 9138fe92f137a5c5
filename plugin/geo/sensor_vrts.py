"""generate --vrt: each generated multi-group sensor of a COP-GEN run (s2l2a, s2l1c) as one
product, a VRT per sample stacking its groups' native-resolution COGs at 10 m in band order
(:func:`plugin.geo.physical_outputs.write_sensor_vrt`: references, no pixels copied)."""

from pathlib import Path

from ..engine.errors import InputError
from ..engine.families.copgen.registry import SENSORS


def stacked_sensors(keys):
    """The sensors with several groups (in registry order) that have a group among ``keys``."""
    return [sensor for sensor, groups in SENSORS.items() if len(groups) > 1 and set(groups) & set(keys)]


def check_vrt_request(request):
    """InputError (field "vrt") when --vrt has nothing to stack in ``request``."""
    if not stacked_sensors(request.generate):
        raise InputError("stacks the groups of a generated sensor with several groups (s2l2a or s2l1c, or "
                         "one of their groups); none is generated", "vrt")


def write_sensor_vrts(request, paths):
    """One VRT per stacked sensor and sample beside ``paths`` (generate_area's return for
    ``request``); the VRT paths. Names: <run>_<sensor>[_sampleN].vrt, as the COGs are named."""
    from .physical_outputs import write_sensor_vrt

    by_name = {Path(path).name: Path(path) for path in paths}
    names = iter(request.output_names())
    files = {}  # (sensor, sample) -> {key: path}
    for key in request.generate:
        for sample in range(1, request.samples + 1):
            name = next(names)
            for sensor in stacked_sensors([key]):
                if key in SENSORS[sensor] and name in by_name:
                    files.setdefault((sensor, sample), {})[key] = by_name[name]
    written = []
    for (sensor, sample), group_paths in files.items():
        folder = next(iter(group_paths.values())).parent
        suffix = f"_sample{sample}" if request.samples > 1 else ""
        written.append(write_sensor_vrt(group_paths, sensor, folder / f"{request.run_name}_{sensor}{suffix}.vrt"))
    return written
