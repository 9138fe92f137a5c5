"""What a COP-GEN model will see of its conditions: ``prepare`` with a COP-GEN model.

Each condition raster is read exactly as ``generate`` reads it (:meth:`PhysicalConditionSpec.
reader`: the bands picked, S1 dB made linear, the Sentinel-2 product's DN offset taken off,
the DEM resampled to 30 m, class codes by nearest neighbour only, unknown codes refused) onto
the run's model lattice (:func:`.physical_pipeline.area_lattice`: the same footprint a
``generate`` with the same conditions and area covers), and each official key it fills is
written in physical units at its native resolution as ``generate`` writes its outputs
(:class:`.physical_outputs.PhysicalWriter`, named ``<run>_<key>.tif``). Windows of at most
1024 px a side are read and written at a time, so memory does not grow with the area. The
values are those fed to the model before its own scaling; stored as the outputs' data types,
S2 DN are rounded to whole numbers (and kept >= 1, 0 being nodata).

The checks are generate's: the request is a :class:`GenerationRequest` that generates only the
location (never read from a raster), so every group of every condition is fed, and its
conditions, area and date are checked as a run's are. Everything is written in a temporary
folder inside ``out_dir`` and moved out when every file is complete.
"""

import shutil
from contextlib import ExitStack
from pathlib import Path

from ..engine.atomic import check_not_input, move_into_place, remove_leftovers, temp_sibling
from ..engine.cancel import check_cancel
from ..engine.errors import InputError
from ..engine.families import COPGEN
from ..engine.families.copgen.registry import BY_KEY
from ..engine.families.copgen.request_rules import condition_keys
from ..engine.request import GenerationRequest, output_file_name
from ..engine.wording import percent
from .output import provenance_tags
from .physical_outputs import PhysicalWriter
from .physical_pipeline import LOCATION, area_lattice, s2_offset_tags
from .pipeline import FULL_COVERAGE, check_area, make_out_dir

RUN_NAME = "prepared"  # prepare's default file prefix (generate's is copgen_seed<seed>)
WINDOW = 1024  # pixels a side of the windows read and written at a time


def prepare_request(conditions, extent=None, aoi=None, date=None, run_name=None, max_area_km2=None):
    """The :class:`GenerationRequest` of a COP-GEN ``prepare``: ``conditions`` are
    PhysicalConditionSpecs; errors are generate's, naming the same fields."""
    if not conditions:
        raise InputError("name at least one condition raster: prepare shows what the model is fed of them",
                         "conditions")
    return GenerationRequest(generate=[LOCATION], conditions=conditions, extent=extent, aoi=aoi, date=date,
                             run_name=RUN_NAME if run_name is None else run_name, max_area_km2=max_area_km2,
                             family=COPGEN)


def prepared_names(request):
    """{(condition index, official key): file name} of what ``request`` feeds, in its order."""
    return {(index, key): output_file_name(request.run_name, key)
            for index, spec in enumerate(request.conditions)
            for key in condition_keys(spec.modality, request.generate)}


def prepare_physical(request, out_dir, progress=None, cancel=None, notify=None, model_name=""):
    """Write what ``request`` (see :func:`prepare_request`) feeds the model, one COG per key
    into ``out_dir``; the paths. ``notify(line)`` is told the readers' notes (a band order taken
    without names, a DN offset taken off), the date and how much of the area each key covers.
    ``progress(done, total)`` counts windows; ``cancel()`` returning True stops (Cancelled)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output folder {out_dir} exists and is not a folder")
    lattice = area_lattice(request)
    check_area(lattice.grid(10), request.max_area_km2)
    names = prepared_names(request)
    check_not_input([out_dir / name for name in names.values()], [spec.path for spec in request.conditions], "output")
    windows = {key: list(lattice.grid(BY_KEY[key].resolution_m).blocks(WINDOW)) for _, key in names}
    step = _counter(progress, sum(len(windows[key]) for _, key in names))
    with ExitStack() as readers:
        # every file resolved (bands, overlap) before any folder is made: refusals leave nothing
        opened = [readers.enter_context(spec.reader(lattice)) for spec in request.conditions]
        created = not out_dir.exists()
        make_out_dir(out_dir)
        remove_leftovers(out_dir)
        work = temp_sibling(out_dir / request.run_name)
        work.mkdir()
        try:
            notes = [f"date {request.date}: every window is conditioned on it"] if request.date else []
            for index, (spec, reader) in enumerate(zip(request.conditions, opened)):
                tags = {"model": model_name, "conditions": [f"{spec.modality}={spec.path}"],
                        **s2_offset_tags([spec]), "date": request.date or "", "synthetic": "false",
                        **provenance_tags("prepare")}
                notes.extend(reader.notes)
                for key in condition_keys(spec.modality, request.generate):
                    fraction = _write_key(reader, key, work / names[index, key], lattice, tags, windows[key],
                                          cancel, step)
                    notes.append(_coverage_note(key, spec, fraction))
            for note in notes:
                if notify is not None:
                    notify(note)
            # a class map's names and colours (its .aux.xml) go before the file they describe
            moves = [(work / sidecar, out_dir / sidecar) for name in names.values()
                     for sidecar in [name + ".aux.xml"] if (work / sidecar).is_file()]
            move_into_place(moves + [(work / name, out_dir / name) for name in names.values()])
            return [out_dir / name for name in names.values()]
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)  # first: the folder must be empty to go
            if created and not any(out_dir.iterdir()):  # a refusal midway (an unknown code) leaves nothing
                out_dir.rmdir()
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _counter(progress, total):
    """A step() that reports one more window of ``total`` to ``progress`` (None: to nobody)."""
    done = [0]

    def step():
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    return step


def _write_key(reader, key, path, lattice, tags, windows, cancel, step):
    """Write ``key`` of ``reader`` window by window as generate writes its outputs; the fraction
    of the area it covers. InputError as generate's reading (codes unknown, nothing in the area)."""
    covered, inside = 0, 0
    with PhysicalWriter(path, lattice, key, tags=tags) as writer:
        for window in windows:
            check_cancel(cancel, f"writing {path.name}")
            values, valid = reader.read(key, window)
            reader.check(key, values, valid, window)
            writer.write_window(*window[:2], values, valid)
            in_area = writer.grid.aoi_mask(*window)
            covered, inside = covered + int((valid & in_area).sum()), inside + int(in_area.sum())
            step()
        if not covered:  # no window had a valid pixel in the area: the reader's refusal
            reader.check_any_valid(key, valid, window)
    return covered / max(1, inside)


def _coverage_note(key, spec, fraction):
    partial = "; outside it the model generates without this condition" if fraction < FULL_COVERAGE else ""
    return f"{key} from {spec.label} covers {percent(fraction)} of the area{partial}"
