"""Run cell jobs on Dask distributed: an embedded LocalCluster or an existing scheduler.

The driver checks what it can before any work (the model folder on every worker, each cell's
conditions), skips cells whose outputs are complete, submits one task per remaining cell and
reports progress as results arrive. Dask reruns the task of a worker that dies on another
worker; a cell that fails on bad input is recorded and the others go on. At the end the STAC
catalog is rewritten for every complete cell.
"""

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from ..engine.errors import InputError, ModelError
from ..engine.estimate import duration
from .jobs import completed
from .worker import CellResult, model_folder_status, remove_stale_work, run_cell

CONNECT_TIMEOUT_S = 5
ANSWER_GRACE_S = 5  # beyond the connection: the scheduler's first answer
LOCK_FILE = ".dataset.lock"  # in --out while a run writes there (engine.folder_lock)
WORKER_WAIT_S = 60  # a scheduler started a moment ago may have no worker yet


@dataclass
class RunReport:
    total: int = 0
    skipped: list = field(default_factory=list)
    done: list = field(default_factory=list)
    failed: list = field(default_factory=list)  # CellResult


def start_client(scheduler=None, workers=None, gpus=()):
    """(client, cluster or None): connect to ``scheduler`` ("tcp://host:port") or start a
    LocalCluster: one worker process per GPU id in ``gpus`` (each sees only its GPU), else
    ``workers`` processes (default 1); one task at a time each."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return _connect(scheduler), None
    cluster = LocalCluster(
        n_workers=0 if gpus else workers or 1, threads_per_worker=1, processes=True,
        dashboard_address=":0", silence_logs=logging.ERROR,
    )
    try:
        if gpus:
            for gpu in gpus:
                options = {**cluster.new_spec["options"], "env": {"CUDA_VISIBLE_DEVICES": str(gpu)}}
                cluster.worker_spec[f"gpu{gpu}"] = {**cluster.new_spec, "options": options}
            cluster.sync(cluster._correct_state)
        return Client(cluster), cluster
    except BaseException:
        cluster.close()
        raise


def _connect(scheduler):
    """A Client of ``scheduler``, or one InputError line within CONNECT_TIMEOUT_S (plus the TLS
    check): Dask's own timeout does not cover a peer that accepts the connection and never
    answers, so the connection is made in a thread that is given up on at the deadline."""
    from dask.distributed import Client

    check_tls_settings(scheduler)
    outcome = {}

    def connect():
        try:
            outcome["client"] = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except BaseException as exc:  # noqa: BLE001 (handed to the waiting thread)
            outcome["error"] = exc

    thread = threading.Thread(target=connect, name="copgen-connect", daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT_S + ANSWER_GRACE_S)
    if thread.is_alive():
        raise InputError(f"{scheduler}: no Dask scheduler answered within {CONNECT_TIMEOUT_S + ANSWER_GRACE_S} s "
                         "(something accepts connections there but does not answer)", "scheduler")
    error = outcome.get("error")
    if isinstance(error, (OSError, TimeoutError, ValueError, TypeError)):
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"{scheduler}: cannot reach it within {CONNECT_TIMEOUT_S} s ({reason})", "scheduler") from None
    if error is not None:
        raise error
    return outcome["client"]


def check_tls_settings(scheduler):
    """InputError for a ``tls://`` address while Dask has no TLS settings (it would otherwise
    fail deep in the connection with a message about certificates, or not at all)."""
    if not str(scheduler).startswith("tls://"):
        return
    import dask.config

    client = dask.config.get("distributed.comm.tls.client", {}) or {}
    if not (dask.config.get("distributed.comm.tls.ca-file", None) and client.get("cert")):
        raise InputError(
            f"{scheduler}: a tls:// scheduler needs Dask's TLS settings (the CA file and this client's "
            "certificate and key: DASK_DISTRIBUTED__COMM__TLS__CA_FILE, DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT, "
            "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY, or a Dask configuration file)", "scheduler")


def visible_gpus():
    """Ids of the CUDA GPUs this machine shows (CUDA_VISIBLE_DEVICES, else nvidia-smi), or []."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [item.strip() for item in listed.split(",") if item.strip() and item.strip() != "-1"]
    import subprocess

    try:
        result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(result.stdout.splitlines()) if line.startswith("GPU ")]


def dashboard_link(client):
    """The Dask dashboard's address, or "" when the scheduler serves none."""
    return client.dashboard_link if "dashboard" in client.scheduler_info().get("services", {}) else ""


def model_on_workers(client, options):
    """The model folder of ``options`` (RunOptions) as the workers read it, a
    :class:`plugin.dataset.worker.ModelOnWorkers`; ModelError naming a worker that cannot read
    the folder, InputError when workers would run different graphs (their outputs would differ)."""
    address = client.scheduler.address
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_S)
    except TimeoutError:
        raise InputError(f"{address} has no worker after {WORKER_WAIT_S} s; start one with: dask worker {address}",
                         "scheduler") from None
    statuses = client.run(model_folder_status, options)
    for worker, (problem, _) in sorted(statuses.items()):
        if problem:
            raise ModelError(f"{options.model_dir} on worker {worker}: {problem}", "model")
    models = {worker: model for worker, (_, model) in sorted(statuses.items())}
    runs = {worker: model.plan.describe() + " on " + model.plan.device for worker, model in models.items()}
    if len(set(runs.values())) > 1:
        raise InputError("the workers would run different graphs, so cells would depend on where they run ("
                         + "; ".join(f"{worker}: {run}" for worker, run in runs.items())
                         + "); give every worker the same kind of device", "device")
    return next(iter(models.values()))


def run_jobs(client, jobs, model, progress=None, precheck=None):
    """Run the jobs not already complete (``model``: :func:`model_on_workers`); a RunReport.
    ``progress(report, eta_seconds)`` after each finished cell. ``precheck(job)``: a message
    when the job cannot run (recorded as failed)."""
    from dask.distributed import as_completed

    report = RunReport(total=len(jobs))
    pending = []
    for job in jobs:
        if completed(job, model):
            report.skipped.append(job)
            continue
        problem = precheck(job) if precheck else None
        if problem:
            report.failed.append(CellResult(job.cell, False, problem))
        else:
            pending.append(job)
    token = uuid.uuid4().hex[:8]
    futures = {client.submit(run_cell, job, key=f"copgen-cell-{job.cell}-{token}", pure=False): job for job in pending}
    start = time.monotonic()
    if progress:
        progress(report, None)
    seen = set()
    try:
        for future in as_completed(list(futures)):
            job = futures.pop(future)
            if future.status == "finished":
                result = future.result()
            else:
                exc = future.exception()
                first_line = str(exc).splitlines()[0] if str(exc) else ""
                result = CellResult(job.cell, False, f"{type(exc).__name__}: {first_line}")
            # Forget the result on the cluster: a worker dying later must not recompute the cell.
            future.release()
            if job.cell in seen:
                continue
            seen.add(job.cell)
            if result.ok:
                report.done.append(job)
            else:
                report.failed.append(result)
            if progress:
                progress(report, (time.monotonic() - start) / len(seen) * (len(pending) - len(seen)))
    except BaseException:
        client.cancel(list(futures))
        raise
    return report


def describe_progress(report, eta):
    """One progress line: cells done / total, failures, time remaining."""
    done = len(report.done) + len(report.skipped)
    line = f"cells {done}/{report.total} done ({len(report.skipped)} already complete), {len(report.failed)} failed"
    if eta is not None and done + len(report.failed) < report.total:
        line += f", about {duration(eta)} left"
    return line


def finish(out_dir, no_task_running):
    """Clean private work folders of dead workers: only when no task of ours can still run."""
    if no_task_running and os.path.isdir(out_dir):
        remove_stale_work(out_dir)
