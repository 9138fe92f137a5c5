"""The one place onnxruntime sessions are created.

`open_session` picks the execution provider (CUDA when asked for or, with device="auto",
when onnxruntime offers it; CPU otherwise), turns on every graph optimisation and sizes the
CPU thread pool to the physical cores. When CUDA cannot be used it says so in the log and
falls back to the CPU instead of failing.
"""

import logging
import os
from pathlib import Path

import onnxruntime as ort

from .errors import InputError, ModelError

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


class RuntimeSession:
    """An onnxruntime session with the provider it really got."""

    def __init__(self, session, path):
        self._session = session
        self.path = Path(path)
        self.provider = session.get_providers()[0]
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]

    def run(self, feeds):
        """Runs the graph on `feeds` ({input name: array}); returns the outputs in order."""
        return self._session.run(None, feeds)


def cuda_available():
    return CUDA in ort.get_available_providers()


def preferred_precision(device="auto"):
    """fp16 where the model will run on CUDA, fp32 on the CPU."""
    _check_device(device)
    on_cuda = device == "cuda" or (device == "auto" and cuda_available())
    return "fp16" if on_cuda else "fp32"


def physical_cores():
    """Physical cores this process may run on, or None where only onnxruntime can tell.

    Hyper-threads share one core's arithmetic units, so more threads than cores only adds
    contention. On Linux the cores are counted among the CPUs in the process's affinity
    mask (containers often get fewer than the machine has); elsewhere onnxruntime's own
    default already is the physical core count.
    """
    if not hasattr(os, "sched_getaffinity"):
        return None
    allowed = os.sched_getaffinity(0)
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return len(allowed)
    cores = set()
    for entry in text.split("\n\n"):
        fields = dict(
            (key.strip(), value.strip())
            for key, _, value in (line.partition(":") for line in entry.splitlines())
        )
        if fields.get("processor", "").isdigit() and int(fields["processor"]) in allowed:
            cores.add((fields.get("physical id"), fields.get("core id", fields["processor"])))
    return len(cores) or len(allowed)


def open_session(path, device="auto", threads=None):
    """Opens `path` on `device` ("auto", "cpu" or "cuda") and returns a RuntimeSession.

    `threads` sets the intra-op thread pool (default: the physical cores). Raises ModelError
    naming the file when it is missing or not a loadable ONNX model.
    """
    _check_device(device)
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: ONNX model file not found")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or physical_cores() or 0  # 0: onnxruntime decides

    if device == "cuda" and not cuda_available():
        log.warning(
            "CUDA was requested but this onnxruntime has no CUDA provider "
            "(install onnxruntime-gpu); running %s on the CPU",
            path.name,
        )
    elif device == "cuda" or (device == "auto" and cuda_available()):
        try:
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=[CUDA, CPU]
            )
        except Exception as exc:  # CUDA or cuDNN libraries missing, or a bad model (below)
            log.warning("could not open %s with CUDA (%s); trying the CPU", path.name, exc)
        else:
            if session.get_providers()[0] == CUDA:
                return RuntimeSession(session, path)
            log.warning(
                "the CUDA provider did not load (check the CUDA and cuDNN libraries); "
                "running %s on the CPU",
                path.name,
            )
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=[CPU])
    except Exception as exc:  # the CPU provider cannot fail for lack of hardware
        raise ModelError(f"{path}: not a loadable ONNX model ({exc})") from exc
    return RuntimeSession(session, path)


def _check_device(device):
    if device not in DEVICES:
        raise InputError(f"device={device!r}; expected one of {', '.join(DEVICES)}")
