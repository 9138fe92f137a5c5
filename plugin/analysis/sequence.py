"""Several generate_area runs on one area, as one job: shared settings, one progress bar, its
estimate told first, and no files left behind unless every run succeeded."""

from pathlib import Path

from ..engine.estimate import duration
from ..engine.families import BETA
from ..engine.request import GenerationRequest
from ..engine.wording import count
from ..geo.pipeline import estimate_area, estimate_run, generate_area

PROGRESS_SCALE = 1000  # progress units per run


class GenerationSequence:
    """Use as a context manager; :meth:`generate` runs one generation. An exception inside the
    block (a failure or a cancel) deletes every file the sequence wrote.

    ``progress(done, total, stage)`` spans all ``runs``; ``stage`` says which run is at work.
    The area is ``grid`` (COP-GEN-Beta's analyses), else ``area``: the request's area field(s)
    every run shares (COP-GEN's: ``{"extent": (left, bottom, right, top, crs)}``, so runs with
    and without conditions land on one lattice). ``date``: COP-GEN's date condition.
    """

    def __init__(
        self,
        model,
        grid,
        out_dir,
        runs,
        seed=0,
        steps=50,
        solver="dpm-solver-fast",
        max_area_km2=None,
        progress=None,
        cancel=None,
        area=None,
        date=None,
    ):
        self.model = model
        self.grid = grid
        self.area = area if area is not None else {"grid": grid}
        self.out_dir = out_dir
        self.runs = runs
        self.options = {"seed": seed, "steps": steps, "solver": solver, "max_area_km2": max_area_km2,
                        "family": getattr(model, "family", BETA)}
        if date is not None:
            self.options["date"] = date
        self.cancel = cancel
        self.progress = progress
        self.written = []
        self.started = 0

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            for path in self.written:
                path.unlink(missing_ok=True)
                Path(f"{path}.aux.xml").unlink(missing_ok=True)  # a class map's names and colours

    def keep(self, path):
        """Count a file the job wrote itself (a VRT) among those a failure deletes."""
        self.written.append(Path(path))

    def announce(self, shapes):
        """Tell the whole job's estimate up front, before its first run: ``shapes`` is one
        (generated modalities, conditions) count per run. Priced with the kept speed figures, it
        is the first progress message ("estimate: ..."), as a single run's is."""
        if self.progress is None:
            return None
        return self._say([estimate_run(self.model, self.grid, generated, given, 1, self.options["steps"])
                          for generated, given in shapes])

    def announce_requests(self, requests):
        """As :meth:`announce`, priced from the runs' requests (see :meth:`request`): COP-GEN's
        canvases depend on which modalities are generated and given, not only how many."""
        if self.progress is None:
            return None
        return self._say([estimate_area(self.model, request) for request in requests])

    def _say(self, estimates):
        """The job's first progress message: its total number of generations, and its time
        when the machine's speed is known."""
        known = all(estimate.seconds is not None for estimate in estimates)
        longest = max(estimates, key=lambda e: e.seconds or 0).describe()
        total = f"about {duration(sum(e.seconds for e in estimates))} for " if known else ""
        self.progress(0, self.runs * PROGRESS_SCALE,
                      f"estimate: {total}{count(len(estimates), 'generation')} (the longest: {longest})")
        return sum(e.seconds for e in estimates) if known else None

    def request(self, conditions, generate, run_name):
        """The GenerationRequest of one run of this job (validated: bad input fails here)."""
        return GenerationRequest(generate=generate, conditions=conditions, run_name=run_name, **self.area,
                                 **self.options)

    def generate(self, conditions, generate, run_name):
        """Run one generation; returns {modality: output path}."""
        index = self.started
        self.started += 1
        request = self.request(conditions, generate, run_name)
        paths = generate_area(
            self.model, request, self.out_dir, progress=self._run_progress(index, run_name), cancel=self.cancel
        )
        self.written.extend(paths)
        return dict(zip(request.generate, paths))  # one sample: one file per generated modality

    def _run_progress(self, index, run_name):
        if self.progress is None:
            return None

        def progress(done, total, stage):
            fraction = done / total if total else 0.0
            self.progress(
                round((index + fraction) * PROGRESS_SCALE),
                self.runs * PROGRESS_SCALE,
                f"{run_name} ({index + 1}/{self.runs}): {stage}",
            )

        return progress
