"""dataset: generate modalities for many Major TOM cells on Dask distributed, with a STAC catalog.

Cells: --cells 282D_485L,38D_378R, a --cells-layer written by the cells command, or the cells
of an --extent / --aoi. Conditions: MODALITY=FILE (one raster or VRT each cell reads its window
from) or MODALITY=PATTERN with {cell} (e.g. s2_l2a=tiles/{cell}.tif); none: unconditional.
The generation options (--seed, --steps, --solver, --tiling, --precision, --date, ...) are
generate's. A COP-GEN model takes sensor names (s2l2a=tiles/{cell}.tif) and writes each
modality in physical units at its native resolution on the cell's model lattice, as generate.

Each cell gets OUT/<cell>/<modality>.tif on its Major TOM 10 m product grid (1068 px, padded
to 1072 px with a 2 px nodata rim, as generate pads areas to whole latents), with a seed
derived from --seed and the cell name: the files equal those of generate over the cell's
extent with that seed. OUT/collection.json is a STAC catalog of the cells.

Without --scheduler the command starts a local cluster: one worker per GPU with --device cuda,
else --workers processes (default 1; the CPU cores are shared between them). A rerun skips
cells whose outputs are complete (checked by their tags) and redoes the rest; the exit status
is 1 when a cell failed, and the failures are listed.
"""

import argparse
import os
import sys

from ..engine.errors import InputError
from ..engine.wording import count
from ..geo.majortom import PRODUCT_PIXELS, parse_cell_names
from .cells import add_area_options, cells_of_area_args
from .cleanup import folders_removed_on_failure
from .flags import describe
from . import options as cli_options  # the flags generate and dataset share

# This command's own fields (the request's and the model's map through flags.FLAGS).
FLAGS = {"scheduler": "--scheduler", "workers": "--workers", "cell_size_px": "--cell-size-px",
         "max_cells": "--max-cells", "out": "--out"}
DEFAULT_MAX_CELLS = 1000  # a mistyped extent must not queue a continent (as --max-area-km2 guards generate)


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "dataset", help="generate over many Major TOM cells on Dask (GeoTIFFs + STAC)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cells = parser.add_mutually_exclusive_group(required=True)
    cells.add_argument("--cells", metavar="NAMES", help="comma-separated cell names, e.g. 282D_485L,38D_378R")
    cells.add_argument("--cells-layer", metavar="FILE", help="vector file with a 'name' field (the cells command's output)")
    add_area_options(cells)
    cli_options.add_model_option(parser)
    cli_options.add_condition_option(parser, what="a raster each cell reads its window from, or a pattern naming the cell",
                         example="s2_l2a=tiles/{cell}.tif:B04,B03,B02 (COP-GEN: s2l2a=tiles/{cell}.tif)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for OUT/<cell>/<modality>.tif and the STAC catalog (OUT/collection.json)")
    cli_options.add_generation_options(parser)
    cli_options.add_condition_reading_options(parser)
    cli_options.add_precision_options(parser)
    cli_options.add_limit_options(parser, area=False, what="cells (each, and all of them together for --max-hours)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="use this Dask scheduler instead of a local cluster")
    parser.add_argument("--workers", type=int, metavar="N", help="local cluster worker processes (default 1)")
    parser.add_argument(
        "--max-cells", type=int, default=DEFAULT_MAX_CELLS, metavar="N",
        help=f"refuse runs of more than N cells (default {DEFAULT_MAX_CELLS}); raise it for larger datasets",
    )
    parser.add_argument(
        "--cell-size-px", type=int, default=PRODUCT_PIXELS, metavar="N",
        help=f"advanced: generate only the centred N x N px of each cell's product grid (default {PRODUCT_PIXELS})",
    )
    parser.set_defaults(func=run, flags=FLAGS)


def run(args):
    from ..dataset.jobs import ConditionSource, RunOptions, make_jobs
    from ..dataset.run import LOCK_FILE, visible_gpus
    from ..engine.folder_lock import FolderLock

    if args.workers is not None and (args.workers < 1 or args.scheduler):
        raise InputError("a whole number >= 1, for the local cluster only (not with --scheduler)", "workers")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise InputError(f"--out {args.out}: exists and is not a folder")
    cells = read_cells(args)
    if len(cells) > args.max_cells:
        raise InputError(f"{count(len(cells), 'cell')}, above the limit of {args.max_cells}; choose a smaller area or "
                         "raise the limit", "max_cells")
    family = cli_options.model_family(args.model)
    sources = [ConditionSource(spec) for spec in cli_options.condition_specs(args, family)]
    # one worker per GPU on CUDA (each pinned to its GPU), else --workers CPU workers
    gpus = visible_gpus() if args.device == "cuda" and not args.scheduler and args.workers is None else []
    workers = len(gpus) or args.workers or 1
    options = RunOptions(
        model_dir=os.path.abspath(args.model), generate=args.generate, seed=args.seed, steps=args.steps,
        solver=args.solver, samples=args.samples, tiling=args.tiling, reflectance=args.reflectance,
        device=args.device, precision=args.precision,
        threads=None if args.scheduler else max(1, (os.cpu_count() or 1) // workers),
        cell_size_px=args.cell_size_px, family=family, date=args.date,
    )
    jobs = make_jobs(cells, sources, options, os.path.abspath(args.out))  # checks the options once
    # the folder is claimed (and found writable) before any cluster starts; a second run into it is
    # refused while this one lives, so neither ever removes or rewrites the other's work
    with folders_removed_on_failure(args.out), FolderLock(args.out, LOCK_FILE, "another dataset run", InputError, "out"):
        return _run_on_cluster(args, jobs, options, workers, gpus)


def _run_on_cluster(args, jobs, options, workers, gpus):
    from ..dataset.jobs import condition_problem
    from ..dataset.run import dashboard_link, describe_progress, finish, model_on_workers, run_jobs, start_client
    from ..dataset.stac import write_catalog
    from ..dataset.worker import PROGRESS_TOPIC

    client, cluster = start_client(args.scheduler, workers, gpus)
    report = None
    try:
        model = model_on_workers(client, options)
        for note in model.plan.notes:
            print(f"note: {note}", file=sys.stderr)
        print(describe_estimate(client, jobs, args), file=sys.stderr, flush=True)
        client.subscribe_topic(PROGRESS_TOPIC, print_cell_event)
        dashboard = dashboard_link(client)  # asks the scheduler
        if dashboard:
            print(f"Dask dashboard: {dashboard}", file=sys.stderr)

        def progress(report, eta):
            print(describe_progress(report, eta), file=sys.stderr, flush=True)

        report = run_jobs(client, jobs, model, progress=progress, precheck=condition_problem)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        # after an interrupt, tasks may still run on a remote cluster: leave their folders
        finish(args.out, cluster is not None or report is not None)
    complete = report.skipped + report.done
    if complete:
        print(f"STAC catalog: {write_catalog(args.out, complete, model, run_id=f'seed{args.seed}')}")
    print(f"{count(len(report.done), 'cell')} generated, {len(report.skipped)} already complete, "
          f"{len(report.failed)} failed")
    for failure in report.failed:
        print(f"failed: {failure.cell}: {describe(failure.error(), args)}", file=sys.stderr)
    return 1 if report.failed else 0


def print_cell_event(event):
    """A worker's event (see plugin.dataset.worker.cell_reporters) as a line: a cell's stage, or
    a warning as `generate` words it."""
    message = event[1]
    if "warning" in message:
        print(f"warning: cell {message['cell']}: {message['warning']}", file=sys.stderr, flush=True)
    else:
        print(f"cell {message['cell']}: {message['stage']}", file=sys.stderr, flush=True)


def describe_estimate(client, jobs, args):
    """The run's estimate before any cell starts: one cell priced on a worker (which loads the
    model there once, as the cells will), times the cells, over the workers. A cell, or all of
    them, beyond --max-hours / --max-memory-gib is refused here, before any cell is generated."""
    from ..dataset.worker import estimate_cell
    from ..engine.estimate import check_limits, duration

    cell = client.submit(estimate_cell, jobs[0], pure=False).result()
    workers = max(1, len(client.scheduler_info()["workers"]))
    check_limits(cell, args.max_hours, args.max_memory_gib, what="each cell")
    if cell.seconds is None:  # a model whose speed cannot be kept (built by hand): memory only
        return f"estimate: {count(len(jobs), 'cell')}, each {cell.describe()}; no time estimate"
    check_limits(cell, args.max_hours, what=f"the {count(len(jobs), 'cell')} on {count(workers, 'worker')}",
                 seconds=cell.seconds * len(jobs) / workers)
    return (f"estimate: {count(len(jobs), 'cell')}, each {cell.describe()}; about "
            f"{duration(cell.seconds * len(jobs) / workers)} in all on {count(workers, 'worker')} "
            "(cells already complete are skipped)")


def read_cells(args):
    if args.cells is not None:
        return parse_cell_names(args.cells)
    if args.cells_layer is not None:
        from ..dataset.cells_layer import read_cells_layer

        return read_cells_layer(args.cells_layer)
    cells = cells_of_area_args(args)
    if not cells:
        raise InputError("the area holds no Major TOM cell")
    return cells
