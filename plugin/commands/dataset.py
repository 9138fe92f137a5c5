"""dataset: generate modalities for many Major TOM cells on Dask distributed, with a STAC catalog.

Cells: --cells 282D_485L,38D_378R, a --cells-layer written by the cells command, or the cells
of an --extent / --aoi. Conditions: MODALITY=FILE (one raster or VRT each cell reads its window
from) or MODALITY=PATTERN with {cell} (e.g. s2_l2a=tiles/{cell}.tif); none: unconditional.

Each cell gets OUT/<cell>/<modality>.tif on its Major TOM 10 m product grid (1068 px, padded to
1072 like generate pads it) with the seed derived from --seed and the cell name, so it equals
`generate` over the same cell with that seed. Without --scheduler the command starts a local
cluster: one worker per GPU with --device cuda, else --workers processes (default 1, the CPU
cores shared between them). A rerun skips cells
whose outputs are complete (checked by their tags) and redoes the rest; the exit status is 1
when a cell failed, and the failures are listed.
"""

import argparse
import os
import sys

from ..engine.errors import InputError
from ..geo.majortom import PRODUCT_PIXELS, parse_cell_names
from . import generate as generate_command
from .cells import add_area_options, cells_of_area_args

# generate's own flags that mean the same here (copied from its parser, so both read alike)
SHARED_OPTIONS = ("model", "condition", "generate", "out", "samples", "seed", "steps", "solver", "overlap",
                  "reflectance", "source", "s1_db", "s2_offset", "device", "int8")


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "dataset", help="generate over many Major TOM cells on Dask (GeoTIFFs + STAC)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cells = parser.add_mutually_exclusive_group(required=True)
    cells.add_argument("--cells", metavar="NAMES", help="comma-separated cell names, e.g. 282D_485L,38D_378R")
    cells.add_argument("--cells-layer", metavar="FILE", help="vector file with a 'name' field (the cells command's output)")
    add_area_options(cells)
    for action in generate_options():
        parser._add_action(action)
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="use this Dask scheduler instead of a local cluster")
    parser.add_argument("--workers", type=int, metavar="N", help="local cluster worker processes (default 1)")
    parser.add_argument(
        "--cell-size-px", type=int, default=PRODUCT_PIXELS, metavar="N",
        help=f"advanced: generate only the centred N x N px of each cell's product grid (default {PRODUCT_PIXELS})",
    )
    parser.set_defaults(func=run)


def generate_options():
    """The argparse actions of generate's flags in SHARED_OPTIONS."""
    scratch = argparse.ArgumentParser(add_help=False).add_subparsers()
    generate_command.add_parser(scratch)
    actions = scratch.choices["generate"]._actions
    return [action for action in actions if action.dest in SHARED_OPTIONS]


def run(args):
    from ..dataset.jobs import ConditionSource, RunOptions, condition_problem, make_jobs
    from ..dataset.run import (
        dashboard_link, describe_progress, finish, model_info_from_workers, run_jobs, start_client, visible_gpus,
    )
    from ..dataset.stac import write_catalog
    from ..geo.conditions import parse_condition_arg

    if args.workers is not None and (args.workers < 1 or args.scheduler):
        raise InputError("--workers: a whole number >= 1, for the local cluster only (not with --scheduler)")
    cells = read_cells(args)
    reading = {"source": args.source, "s1_in_db": args.s1_db, "s2_offset": args.s2_offset}
    sources = [ConditionSource(parse_condition_arg(text, **reading)) for text in args.condition]
    # one worker per GPU on CUDA (each pinned to its GPU), else --workers CPU workers
    gpus = visible_gpus() if args.device == "cuda" and not args.scheduler and args.workers is None else []
    workers = len(gpus) or args.workers or 1
    options = RunOptions(
        model_dir=os.path.abspath(args.model), generate=args.generate, seed=args.seed, steps=args.steps,
        solver=args.solver, samples=args.samples, overlap=args.overlap, reflectance=args.reflectance,
        device=args.device, precision="int8" if args.int8 else None,
        threads=None if args.scheduler else max(1, (os.cpu_count() or 1) // workers),
        cell_size_px=args.cell_size_px,
    )
    jobs = make_jobs(cells, sources, options, os.path.abspath(args.out))
    if cells:
        from ..geo.majortom import cell_target_grid

        cell_target_grid(cells[0], args.cell_size_px)  # a bad --cell-size-px fails here, once
    client, cluster = start_client(args.scheduler, workers, gpus)
    report = None
    try:
        info = model_info_from_workers(client, options.model_dir)
        os.makedirs(args.out, exist_ok=True)
        if dashboard_link(client):
            print(f"Dask dashboard: {dashboard_link(client)}", file=sys.stderr)

        def progress(report, eta):
            print(describe_progress(report, eta), file=sys.stderr, flush=True)

        report = run_jobs(client, jobs, info, progress=progress, precheck=condition_problem)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        # after an interrupt, tasks may still run on a remote cluster: leave their folders
        finish(args.out, cluster is not None or report is not None)
    complete = report.skipped + report.done
    if complete:
        print(f"STAC catalog: {write_catalog(args.out, complete, info, run_id=f'seed{args.seed}')}")
    print(f"{len(report.done)} cells generated, {len(report.skipped)} already complete, {len(report.failed)} failed")
    for failure in report.failed:
        print(f"failed: {failure.cell}: {failure.message}", file=sys.stderr)
    return 1 if report.failed else 0


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
