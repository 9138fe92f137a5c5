"""The one place onnxruntime sessions are created.

`open_session` picks the execution provider (CUDA when asked for or, with device="auto",
when onnxruntime offers it; CPU otherwise), turns on every graph optimisation and sizes the
CPU thread pool to the physical cores. When CUDA cannot be used it says so in the log and
falls back to the CPU instead of failing. On CUDA, runs go through IO binding with device
buffers reused from call to call (see `BoundRunner`).
"""

import ctypes
import logging
import os
import sys
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .errors import Cancelled, ModelError
from .precision import check_device

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


class RuntimeSession:
    """An onnxruntime session with the provider it really got.

    io_binding: run through a BoundRunner (None: only on CUDA, where it saves the
    allocations and copies of every call; on the CPU plain runs are as fast).
    """

    def __init__(self, session, path, io_binding=None):
        self._session = session
        self.path = Path(path)
        self.provider = session.get_providers()[0]
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        if io_binding is None:
            io_binding = self.provider == CUDA
        device = "cuda" if self.provider == CUDA else "cpu"
        self._runner = BoundRunner(session, device) if io_binding else None

    def run(self, feeds, cancel=None):
        """Runs the graph on `feeds` ({input name: array}); returns the outputs in order.

        cancel: None or a callable polled while the graph runs (one VAE call can take many
        seconds); once it returns True onnxruntime is told to stop between nodes and the call
        raises Cancelled.
        """
        if cancel is None:
            return self._run(feeds, None)
        options = ort.RunOptions()
        with CancelWatcher(cancel, options) as watcher:
            try:
                return self._run(feeds, options)
            except Exception as exc:  # onnxruntime's own error for a terminated run
                if watcher.fired:
                    raise Cancelled(f"cancelled while running {self.path.stem}") from exc
                raise

    def _run(self, feeds, options):
        if self._runner is not None:
            return self._runner.run(feeds, options)
        return self._session.run(None, feeds, options)


class CancelWatcher:
    """A thread that polls ``cancel()`` every POLL_S while a run is in progress and sets the
    run options' ``terminate`` flag once it returns True (onnxruntime reads the flag between
    nodes, from its own threads)."""

    POLL_S = 0.05

    def __init__(self, cancel, options):
        self._cancel = cancel
        self._options = options
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="copgen-cancel-watch", daemon=True)
        self.fired = False

    def _watch(self):
        while not self._done.wait(self.POLL_S):
            if self._cancel():
                self.fired = True
                self._options.terminate = True
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()


class BoundRunner:
    """Runs a session through IO binding, keeping its input and output buffers on `device`.

    An input buffer is refilled in place while its shape and dtype stay the same; the output
    buffers are kept per input-shape signature (the last few), so sampling, which repeats the
    same shapes every step, allocates no device memory after its first call. Results are
    returned as fresh host arrays, never views of the reused buffers.
    """

    KEPT_SIGNATURES = 4  # a full batch, a remainder, and room for a second model use

    def __init__(self, session, device):
        self._session = session
        self._device = device
        self._binding = session.io_binding()
        self._output_names = [o.name for o in session.get_outputs()]
        self._inputs = {}
        self._outputs = OrderedDict()

    def run(self, feeds, options=None):
        signature = tuple(sorted((name, np.shape(value)) for name, value in feeds.items()))
        for name, value in feeds.items():
            self._binding.bind_ortvalue_input(name, self._input_buffer(name, value))
        outputs = self._outputs.get(signature)
        for index, name in enumerate(self._output_names):
            if outputs is None:
                self._binding.bind_output(name, self._device)  # onnxruntime allocates once
            else:
                self._binding.bind_ortvalue_output(name, outputs[index])
        self._session.run_with_iobinding(self._binding, options)
        if outputs is None:
            outputs = self._binding.get_outputs()
            self._outputs[signature] = outputs
            while len(self._outputs) > self.KEPT_SIGNATURES:
                self._outputs.popitem(last=False)
        self._outputs.move_to_end(signature)
        return [np.array(value.numpy()) for value in outputs]

    def _input_buffer(self, name, value):
        array = np.ascontiguousarray(value)
        kept = self._inputs.get(name)
        if kept is not None and kept[1:] == (array.shape, array.dtype):
            kept[0].update_inplace(array)  # copies into the existing device buffer
            return kept[0]
        # a buffer of our own: from_numpy would wrap (and later overwrite) the caller's array
        buffer = ort.OrtValue.ortvalue_from_shape_and_type(
            array.shape, array.dtype, self._device, 0
        )
        buffer.update_inplace(array)
        self._inputs[name] = (buffer, array.shape, array.dtype)
        return buffer


def cuda_available():
    return CUDA in ort.get_available_providers()


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


def open_session(path, device="auto", threads=None, io_binding=None):
    """Opens `path` on `device` ("auto", "cpu" or "cuda") and returns a RuntimeSession.

    `threads` sets the intra-op thread pool (default: the physical cores); `io_binding` see
    RuntimeSession. Raises ModelError naming the file when it is missing or not a loadable
    ONNX model.
    """
    check_device(device)
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
                release_freed_heap()
                return RuntimeSession(session, path, io_binding)
            log.warning(
                "the CUDA provider did not load (check the CUDA and cuDNN libraries); "
                "running %s on the CPU",
                path.name,
            )
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=[CPU])
    except Exception as exc:  # the CPU provider cannot fail for lack of hardware
        raise ModelError(f"{path}: not a loadable ONNX model ({exc})") from exc
    release_freed_heap()
    return RuntimeSession(session, path, io_binding)


def release_freed_heap():
    """Hands the heap freed by loading a model back to the OS (glibc on Linux only).

    onnxruntime reads a whole .onnx file and copies its weights before freeing the file's
    bytes; glibc keeps that freed heap resident, which measured 0.5 GiB of the peak RSS of a
    tile (the VAE graphs hold their weights inline).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # another C library (musl)
        pass

