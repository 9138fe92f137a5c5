"""The fast preference on the CPU: the fastest denoiser path of this host, measured once.

Which path is fastest depends on the CPU's units, not its name: ONNX Runtime's int8 kernels
use VNNI (and AMX where its build has them), OpenVINO's bf16 kernels use AVX-512 BF16 or AMX
tiles, and a CPU with neither may be fastest in fp32. So instead of a table of CPU names, the
candidate paths (:func:`candidates`) are timed on this host the first time a model is opened
with the "fast" preference on the CPU:

- ``fp32``: the folder's fp32 denoiser on ONNX Runtime (also the reference for the error);
- ``int8``: the folder's int8 denoiser on ONNX Runtime;
- ``bf16``: the fp32 denoiser on OpenVINO's CPU plugin at bf16 inference precision, only when
  the ``openvino`` package is installed (it is optional).

Each is opened, called once on inputs built from the graph's declared input shapes (batch 1;
any family's denoiser), its output compared with fp32's, then timed over a few calls. A path
whose RMS error against fp32 exceeds ``ERROR_BAR`` (the int8 path's measured 2.6 % of the
noise prediction, with room for the inputs) is never chosen; of the others the fastest wins.
The result is kept in a cache file (:func:`cache_file`) keyed by the graphs' hashes, the
runtimes' versions, the CPU flags and the thread count (:func:`cache_key`); any change, or a
broken file, measures again. The plan's notes say which path runs and why.
"""

import hashlib
import importlib.util
import json
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .atomic import write_json_atomic
from .cpu_features import cpu_key
from .errors import CopGenError
from .precision import INT8_KEY, resolve

log = logging.getLogger(__name__)

ERROR_BAR = 0.03  # RMS(path - fp32) / RMS(fp32) of the noise prediction; int8 measures 0.026
TIMED_CALLS = 2  # after the call that gives the error (it also warms the session up)
CACHE_NAME = "fast_path.json"
CACHE_VERSION = 1
FIRST_RUN_NOTE = "fast: the first run measures which denoiser path is fastest on this CPU (int8 until then)"


@dataclass(frozen=True)
class Candidate:
    """One way to run the denoiser: a graph file, its precision word and the runtime."""

    precision: str  # "fp32", "int8", "bf16"
    runtime: str  # "onnxruntime" or "openvino"
    graph: Path

    @property
    def name(self):
        return f"{self.precision} on {self.runtime}"


def openvino_version():
    """The installed openvino's version, or None (the package is optional)."""
    if importlib.util.find_spec("openvino") is None:
        return None
    try:
        import openvino

        return openvino.__version__
    except Exception:  # a broken install is no candidate
        return None


def candidates(plan, info):
    """The paths worth timing for a fast CPU plan whose denoiser is the int8 graph."""
    fp32 = resolve(plan.model_dir, "cpu", "faithful", info=info).graphs["denoiser"]
    found = [
        Candidate("fp32", "onnxruntime", fp32),
        Candidate(INT8_KEY, "onnxruntime", plan.graphs["denoiser"]),
    ]
    if openvino_version() is not None:
        found.append(Candidate("bf16", "openvino", fp32))
    return found


def open_candidate(candidate, threads=None):
    """A session with .run(feeds) -> [outputs] (and input/output names) for ``candidate``."""
    if candidate.runtime == "openvino":
        from .openvino_session import OpenVinoSession

        return OpenVinoSession(candidate.graph, candidate.precision, threads)
    from .runtime import open_session

    return open_session(candidate.graph, device="cpu", threads=threads)


def open_network(plan, network, threads=None):
    """The session of ``network`` ("denoiser", ...) as ``plan`` says: its graph, device and runtime."""
    runtime = plan.runtimes.get(network, "onnxruntime")
    if runtime != "onnxruntime":
        return open_candidate(Candidate(plan.precisions[network], runtime, plan.graphs[network]), threads)
    from .runtime import open_session

    return open_session(plan.graphs[network], device=plan.devices[network], threads=threads)


# -- inputs and measurements ----------------------------------------------------------------------

_DTYPES = {1: np.float32, 10: np.float16, 11: np.float64, 6: np.int32, 7: np.int64}


def timing_inputs(graph, rng):
    """{input name: array} for the ONNX file ``graph``, from its declared input shapes with
    batch 1: the ``timesteps`` input gets uniform times in [0, 1000), other float inputs
    standard normal values, integer inputs zeros. A named dimension other than the first
    (the batch) cannot be guessed: CopGenError."""
    import onnx

    model = onnx.load(os.fspath(graph), load_external_data=False)
    initializers = {tensor.name for tensor in model.graph.initializer}
    feeds = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        shape = []
        for axis, dim in enumerate(tensor.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                shape.append(dim.dim_value)
            elif axis == 0:
                shape.append(1)
            else:
                raise CopGenError(f"{graph}: input {value.name!r} has an undeclared dimension {axis}")
        dtype = _DTYPES.get(tensor.elem_type, np.float32)
        if np.issubdtype(dtype, np.integer):
            feeds[value.name] = np.zeros(shape, dtype)
        elif value.name == "timesteps":  # both families' network times (not COP-GEN's date input)
            feeds[value.name] = rng.uniform(0.0, 1000.0, shape).astype(dtype)
        else:
            feeds[value.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def best_of(name, call, calls=TIMED_CALLS):
    """The default timer: the fastest of ``calls`` runs of ``call()``, in seconds."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def relative_rms(actual, reference):
    return float(np.sqrt(np.mean((actual - reference) ** 2) / np.mean(reference.astype(np.float64) ** 2)))


def measure(paths, threads=None, timer=best_of, opener=open_candidate):
    """{"seconds": {name: s}, "errors": {name: rms}, "rejected": {name: why}} of ``paths``
    (the first is the fp32 reference). ``timer(name, call)`` returns the seconds of a call;
    ``opener(candidate, threads)`` opens one (both seams for tests)."""
    feeds = timing_inputs(paths[0].graph, np.random.default_rng(0))
    seconds, errors, rejected, reference = {}, {}, {}, None
    for candidate in paths:
        try:
            session = opener(candidate, threads)
            # every output, flattened: COP-GEN gives one noise prediction per modality
            output = np.concatenate([np.asarray(out).ravel() for out in session.run(feeds)])
            seconds[candidate.name] = float(timer(candidate.name, lambda: session.run(feeds)))
        except Exception as exc:  # an optional runtime that fails here is no candidate
            if reference is None:
                raise
            rejected[candidate.name] = f"failed ({exc})"
            continue
        finally:
            session = None  # one full-size session in memory at a time
        if reference is None:
            reference = output
        errors[candidate.name] = relative_rms(output, reference)
        if errors[candidate.name] > ERROR_BAR:
            rejected[candidate.name] = (
                f"its error against fp32 ({errors[candidate.name]:.1%} RMS) exceeds the {ERROR_BAR:.0%} bar"
            )
    return {"seconds": seconds, "errors": errors, "rejected": rejected}


def pick(paths, figures):
    """The fastest candidate not rejected (fp32, the reference, always qualifies)."""
    allowed = [c for c in paths if c.name in figures["seconds"] and c.name not in figures["rejected"]]
    return min(allowed, key=lambda c: figures["seconds"][c.name])


# -- the cache -------------------------------------------------------------------------------------


def user_cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.environ.get("LOCALAPPDATA") or Path.home() / ".cache"
    return Path(base) / "copgen-beta"


def cache_file(model_dir):
    """The model folder's own file where the folder is writable, else one per folder in the
    user's cache folder."""
    model_dir = Path(model_dir)
    if os.access(model_dir, os.W_OK):
        return model_dir / CACHE_NAME
    digest = hashlib.sha256(str(model_dir.resolve()).encode()).hexdigest()[:16]
    return user_cache_dir() / f"fast_path-{digest}.json"


def _file_identity(path, info):
    """The sha256 model.json records for ``path`` and its external-data files; where it
    records none, their sizes and modification times."""
    files = info.get("files", {})
    recorded = {name: entry.get("sha256") for name, entry in files.items() if name.startswith(path.name)}
    if recorded.get(path.name):
        return recorded
    return {
        sibling.name: f"{sibling.stat().st_size}:{sibling.stat().st_mtime_ns}"
        for sibling in sorted(path.parent.glob(path.name + "*"))
    }


def cache_key(paths, info, threads=None):
    """What a measurement holds for: any change here measures again."""
    from onnxruntime import __version__ as ort_version

    from .runtime import physical_cores

    return {
        "version": CACHE_VERSION,
        "candidates": [c.name for c in paths],
        "graphs": {c.graph.name: _file_identity(c.graph, info) for c in paths},
        "runtimes": {"onnxruntime": ort_version, "openvino": openvino_version()},
        "cpu": cpu_key(),
        "threads": threads or physical_cores() or 0,
        "error_bar": ERROR_BAR,
    }


def read_cache(path, key):
    """The cached figures when ``path`` holds a measurement for ``key``, else None (a missing,
    unreadable or broken file, or one measured for something else)."""
    try:
        cached = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(cached, dict) or cached.get("key") != key:
        return None
    figures = {name: cached.get(name) for name in ("seconds", "errors", "rejected")}
    if not all(isinstance(value, dict) for value in figures.values()):
        return None
    if not set(key["candidates"]) <= set(figures["seconds"]) | set(figures["rejected"]):
        return None
    return figures


def write_cache(path, key, figures):
    try:
        write_json_atomic(path, {"key": key, **figures, "measured": time.strftime("%Y-%m-%d %H:%M:%S")})
    except (CopGenError, OSError) as exc:  # measuring again next time costs seconds, not the run
        log.warning("could not keep the fast path measurement in %s (%s)", path, exc)


# -- the decision ----------------------------------------------------------------------------------


def choose(plan, info, threads=None, timer=best_of, opener=open_candidate, cache_path=None, measure_now=True):
    """(the chosen Candidate, its figures, whether they came from the cache) for a fast CPU plan;
    None where nothing is cached and ``measure_now`` is False."""
    paths = candidates(plan, info)
    cache_path = cache_file(plan.model_dir) if cache_path is None else Path(cache_path)
    key = cache_key(paths, info, threads)
    figures = read_cache(cache_path, key)
    cached = figures is not None
    if not cached:
        if not measure_now:
            return None
        log.info("measuring the fast denoiser paths on this CPU: %s", ", ".join(c.name for c in paths))
        figures = measure(paths, threads, timer, opener)
        write_cache(cache_path, key, figures)
    return pick(paths, figures), figures, cached


def apply(plan, info, threads=None, measure_now=True, **seams):
    """``plan`` with the fastest measured denoiser path where it is a fast CPU plan with an int8
    denoiser (other plans are returned as they are); a note says which path and why.
    measure_now=False (for reports and settings pages): only a cached choice is applied, else
    a note says that the first run measures."""
    if plan.preference != "fast" or plan.device != "cpu" or plan.denoiser_precision != INT8_KEY:
        return plan
    try:
        choice = choose(plan, info, threads, measure_now=measure_now, **seams)
    except CopGenError as exc:  # e.g. a graph whose input shapes cannot be guessed: int8 still runs
        log.warning("could not time the fast denoiser paths: %s", exc)
        return replace(plan, notes=plan.notes + (f"fast: the paths could not be timed ({exc}); the int8 denoiser runs",))
    if choice is None:
        return replace(plan, notes=plan.notes + (FIRST_RUN_NOTE,))
    chosen, figures, cached = choice
    return replace(
        plan,
        graphs={**plan.graphs, "denoiser": chosen.graph},
        precisions={**plan.precisions, "denoiser": chosen.precision},
        runtimes={**plan.runtimes, "denoiser": chosen.runtime},
        notes=plan.notes + (describe_choice(chosen, figures, cached),),
    )


def describe_choice(chosen, figures, cached):
    """One line for users: what runs, the figures that chose it, what was ruled out."""
    seconds = figures["seconds"]
    others = ", ".join(
        f"{name} {value:.2f} s" for name, value in sorted(seconds.items(), key=lambda item: item[1])
        if name != chosen.name
    )
    text = (
        f"fast: the denoiser runs {chosen.name}, the fastest path measured on this CPU "
        f"({seconds[chosen.name]:.2f} s per call"
        + (f"; {others}" if others else "")
        + ")"
    )
    for name, why in figures["rejected"].items():
        text += f"; {name} not used: {why}"
    return text + ("; measured earlier on this machine" if cached else "; measured now, kept for next time")
