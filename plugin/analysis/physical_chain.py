"""The generation chain for COP-GEN: a sensor regenerated through other sensors, again and again;
how far each regenerated layer drifts from the real one, band by band in physical units.

Iteration k generates the ``via`` sensors from the current input (the real raster first, then
the previous iteration's regenerated one), then the input sensor's groups back from them, and
compares each regenerated group with the real raster read on the outputs' grid
(:mod:`.physical_metrics`). Generated layers go back in as conditions: one file per sensor
(a sensor of several groups as the VRT that stacks its group files, without copying pixels).
Every run shares the real raster's area and one seed.
"""

from dataclasses import dataclass
from pathlib import Path

from ..engine.errors import InputError
from ..engine.families import COPGEN
from ..engine.families.copgen.registry import BY_KEY, SENSORS
from ..engine.request import known_modality_keys
from ..geo.physical_outputs import write_sensor_vrt
from ..geo.physical_pipeline import PhysicalConditionSpec
from .physical_metrics import compare_modality
from .physical_renderings import footprint_area, output_lattice, read_physical, real_layers
from .sequence import GenerationSequence


@dataclass(frozen=True)
class PhysicalChainStep:
    """One generated layer of the chain (official key ``modality``); ``metrics``: one
    BandComparison per band against the real input, () for the via sensors (no real one)."""

    iteration: int
    modality: str
    path: Path
    metrics: tuple


def chain_sensors(names, field):
    """The sensors of ``names`` (a list or "a,b" of sensors or official keys), each whole; an
    InputError naming ``field`` for a key that is one group of a sensor of several, or a
    modality that is no raster (location, date)."""
    keys = known_modality_keys(COPGEN, field, names)
    sensors = []
    for key in keys:
        record = BY_KEY[key]
        if not record.has_vae:
            raise InputError(f"{record.label} is not a raster; the chain regenerates rasters", field)
        missing = [other for other in SENSORS[record.sensor] if other not in keys]
        if missing:
            raise InputError(f"{key} is one group of {record.sensor}; the chain feeds whole sensors back: "
                             f"name {record.sensor}", field)
        if record.sensor not in sensors:
            sensors.append(record.sensor)
    return sensors


def run_physical_chain(model, condition, via, iterations, out_dir, seed=0, steps=50, solver="dpm-solver-fast",
                       run_name="chain", date=None, max_area_km2=None, progress=None, cancel=None):
    """Run the chain from ``condition`` (a PhysicalConditionSpec of a whole sensor) through the
    sensors ``via`` (names); the PhysicalChainSteps in the order generated. A failure or
    cancel leaves no file behind; bad input fails before anything is written."""
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise InputError(f"must be a whole number >= 1, got {iterations!r}", "iterations")
    source = chain_sensors([condition.modality], "conditions")
    sensors = chain_sensors(via, "via")
    if source[0] in sensors:
        raise InputError(f"the via sensors must differ from the input ({source[0]})", "via")
    back = SENSORS[source[0]]
    there = tuple(key for sensor in sensors for key in SENSORS[sensor])
    with GenerationSequence(model, None, out_dir, 2 * iterations, seed, steps, solver, max_area_km2, progress,
                            cancel, area=footprint_area([condition.path]), date=date) as sequence:
        # priced before any work: stand-ins with the input's path (the costs count modalities)
        stand_ins = [PhysicalConditionSpec(sensor, condition.path) for sensor in sensors]
        sequence.announce_requests([sequence.request([condition], there, run_name),
                                    sequence.request(stand_ins, back, run_name)] * iterations)
        done, current, reference = [], [condition], None
        for iteration in range(1, iterations + 1):
            name = f"{run_name}_iter{iteration:02d}"
            via_paths = sequence.generate(current, there, name)
            done.extend(PhysicalChainStep(iteration, key, path, ()) for key, path in via_paths.items())
            back_paths = sequence.generate(_fed_back(via_paths, name, sequence), back, name)
            if reference is None:  # the real input, read on the outputs' own grids
                reference = real_layers([condition], output_lattice(next(iter(back_paths.values()))), cancel)
            for key, path in back_paths.items():
                done.append(PhysicalChainStep(iteration, key, path,
                                              tuple(compare_modality(key, *reference[key], *read_physical(path)))))
            if iteration < iterations:
                current = _fed_back(back_paths, name, sequence)
    return done


def _fed_back(paths, run_name, sequence):
    """Generated files as the next run's conditions: one PhysicalConditionSpec per sensor."""
    by_sensor = {}
    for key, path in paths.items():
        by_sensor.setdefault(BY_KEY[key].sensor, {})[key] = path
    specs = []
    for sensor, files in by_sensor.items():
        if len(files) == 1:
            path = next(iter(files.values()))
        else:
            path = write_sensor_vrt(files, sensor, Path(sequence.out_dir) / f"{run_name}_{sensor}.vrt")
            sequence.keep(path)
        specs.append(PhysicalConditionSpec(sensor, str(path), layer_name=f"{run_name} {sensor}"))
    return specs
