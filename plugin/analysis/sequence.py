"""Several generate_area runs on one grid, as one job: shared settings, one progress bar, and
no files left behind unless every run succeeded."""

from ..engine.estimate import duration
from ..engine.request import GenerationRequest
from ..geo.pipeline import estimate_run, generate_area

PROGRESS_SCALE = 1000  # progress units per run


class GenerationSequence:
    """Use as a context manager; :meth:`generate` runs one generation. An exception inside the
    block (a failure or a cancel) deletes every file the sequence wrote.

    ``progress(done, total, stage)`` spans all ``runs``; ``stage`` says which run is at work.
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
    ):
        self.model = model
        self.grid = grid
        self.out_dir = out_dir
        self.runs = runs
        self.options = {"seed": seed, "steps": steps, "solver": solver, "max_area_km2": max_area_km2}
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

    def announce(self, shapes):
        """Tell the whole job's estimate up front, before its first run: ``shapes`` is one
        (generated modalities, conditions) count per run. Priced with the kept speed figures, it
        is the first progress message ("estimate: ..."), as a single run's is."""
        if self.progress is None:
            return None
        estimates = [estimate_run(self.model, self.grid, generated, given, 1, self.options["steps"])
                     for generated, given in shapes]
        seconds = sum(estimate.seconds for estimate in estimates)
        self.progress(0, self.runs * PROGRESS_SCALE,
                      f"estimate: about {duration(seconds)} for {len(estimates)} generations "
                      f"(the longest: {max(estimates, key=lambda e: e.seconds).describe()})")
        return seconds

    def generate(self, conditions, generate, run_name):
        """Run one generation; returns {modality: output path}."""
        index = self.started
        self.started += 1
        request = GenerationRequest(
            generate=generate, conditions=conditions, grid=self.grid, run_name=run_name, **self.options
        )
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

