"""The int8 denoiser for the CPU: dynamic quantisation of its MatMul weights.

`quantize_model(model_dir)` adds ``denoiser.int8.onnx`` (+ its ``.data`` file) to an fp32
model folder and records it in model.json under ``"int8"``; ``convert(..., precision="int8")``
writes the same files while converting. Every MatMul with a constant 2-D weight (the q/k/v,
proj, MLP and skip projections: nearly all of the arithmetic) gets int8 weights, symmetric
per output channel, and uint8 activations quantised per tensor at run time; onnxruntime runs
them as fused DynamicQuantizeMatMul kernels. Attention scores, softmax, norms and GELU stay in
float32, and so do COP-GEN's per-modality prediction heads. The fp32 graph remains the
faithful default; `plugin.engine.precision.resolve` picks the int8 graph for the "fast"
preference on the CPU.
"""

import logging
import os
import platform
import shutil
from pathlib import Path

from .atomic import move_into_place, remove_leftovers, temp_sibling, translate_os_errors, write_json_atomic
from .errors import ModelError
from .model_folder import INFO_FILE, file_entry, read_info
from .precision import DENOISER_FILE, INT8_FILE, INT8_KEY

INT8_DATA_FILE = INT8_FILE + ".data"  # the name onnxruntime's quantizer gives the weights
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
HEAD_PREFIX = "decoder_preds."  # COP-GEN's per-modality heads (2-D weights) stay float32


class _NoPreprocessingAdvice(logging.Filter):
    """onnxruntime advises its pre-processing (for static quantisation) on every graph, on the
    root logger: here, dynamic MatMul weights only, it does not apply and no user can act on it."""

    def filter(self, record):
        return "pre-processing before quantization" not in record.getMessage()


def quantize_denoiser(source, target, per_channel=True, reduce_range=None):
    """Writes the int8 version of the fp32 denoiser graph `source` as `target` (+ .data).

    reduce_range: 7-bit weights, which avoid the int16 saturation of x86 CPUs without VNNI;
    None decides from this CPU (`needs_reduced_range`). Returns the dict model.json records.
    """
    import onnx
    from onnxruntime import __version__ as ort_version
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, target = Path(source), Path(target)
    if reduce_range is None:
        reduce_range = needs_reduced_range()
    graph = onnx.load(os.fspath(source), load_external_data=False).graph
    # the prediction heads stay float32: they write the output itself, for a negligible
    # share of the arithmetic (Beta's batched 3-D heads never matched anyway)
    weights = {
        t.name
        for t in graph.initializer
        if len(t.dims) == 2 and not t.name.startswith(HEAD_PREFIX)
    }
    nodes = [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    del graph
    quiet = _NoPreprocessingAdvice()
    logging.getLogger().addFilter(quiet)
    try:
        quantize_dynamic(
            source,
            target,
            op_types_to_quantize=["MatMul"],
            nodes_to_quantize=nodes,
            per_channel=per_channel,
            reduce_range=reduce_range,
            weight_type=QuantType.QInt8,
            use_external_data_format=True,
            # shape inference stops at contrib ops (MultiHeadAttention): their outputs are float
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:  # the quantiser's shape-inferred copy of the graph, left behind if it failed
        logging.getLogger().removeFilter(quiet)
        source.with_name(f"{source.stem}-inferred{source.suffix}").unlink(missing_ok=True)
    # the quantiser writes the weights 0600: every file of a folder gets the graph's mode, so a
    # shared folder works for other users (Dask workers under a service account)
    for name in (target, target.with_name(INT8_DATA_FILE)):
        if name.exists():
            shutil.copymode(source, name)
    return {
        "file": target.name,
        "quantized_matmuls": len(nodes),
        "weights": "int8, symmetric, per output channel" if per_channel else "int8, symmetric",
        "activations": "uint8 per tensor, at run time",
        "reduce_range": reduce_range,
        "onnxruntime": ort_version,
    }


def quantize_model(model_dir, per_channel=True, reduce_range=None):
    """Adds the int8 denoiser to the fp32 model folder `model_dir`; returns the graph's Path.

    The new files are complete before they get their names and model.json is replaced in
    one rename, so an interrupted run leaves the folder as it was (when an int8 graph is
    being replaced: at most without it in model.json).
    """
    model_dir = Path(model_dir)
    info_path = model_dir / INFO_FILE
    info = read_info(info_path)
    if info.get("precision") != "fp32":
        raise ModelError(
            f"{info_path}: precision is {info.get('precision')!r}; int8 is made from an fp32 "
            "folder (convert with precision fp32 or int8)"
        )
    remove_leftovers(model_dir)  # of a quantisation killed before it could clean up
    work = temp_sibling(model_dir / INT8_FILE)  # a killed run's leftover is recognisable
    work.mkdir()
    try:
        with translate_os_errors(model_dir / INT8_FILE):  # a full disk is one line, not a traceback
            entry = quantize_denoiser(
                model_dir / DENOISER_FILE, work / INT8_FILE, per_channel, reduce_range
            )
            _verify_int8_graph(work / INT8_FILE)
        int8_files = {name: file_entry(work / name) for name in (INT8_FILE, INT8_DATA_FILE)}
        base = {key: value for key, value in info.items() if key != INT8_KEY}
        base["files"] = {
            name: record
            for name, record in info.get("files", {}).items()
            if name not in int8_files
        }
        if base != info:  # model.json must not vouch for files while they are replaced
            write_json_atomic(info_path, base)
        move_into_place([(work / name, model_dir / name) for name in (INT8_DATA_FILE, INT8_FILE)])
        write_json_atomic(
            info_path, {**base, INT8_KEY: entry, "files": {**base["files"], **int8_files}}
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return model_dir / INT8_FILE


def _verify_int8_graph(path):
    """The written graph and its weights are on disk and load: checked before they get their
    names, so a truncated write (full disk, killed quantiser) never enters the folder."""
    from .runtime import open_session

    for name in (path, path.with_name(INT8_DATA_FILE)):
        with open(name, "rb") as handle:
            os.fsync(handle.fileno())
    open_session(path, device="cpu", threads=1)


def needs_reduced_range():
    """Whether this machine's CPU wants 7-bit weights; see `reduced_range_for`."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = None
    return reduced_range_for(platform.machine(), cpuinfo)


def reduced_range_for(machine, cpuinfo):
    """True for x86 CPUs without VNNI, whose u8 x s8 kernels saturate 16-bit sums.

    cpuinfo: the text of /proc/cpuinfo, or None where it cannot be read: an x86 CPU is then
    assumed to lack VNNI (7-bit weights cost a little accuracy, saturation costs much more).
    ARM CPUs have no such issue.
    """
    if machine.lower() not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return False
    if cpuinfo is None:
        return True
    flags = set(cpuinfo.split())
    return not any(flag in flags for flag in VNNI_FLAGS)
