"""Reading a ``.safetensors`` file without trusting its header: every entry's dtype, shape and
offsets are checked against the data section, tensors may not overlap, and arrays are views of
the memory-mapped file (bfloat16 and big-endian data are converted). Called by
:func:`plugin.engine.checkpoint.load_state_dict`, which recognises the format."""

import json
import struct

import numpy as np

from .cancel import check_cancel
from .errors import CheckpointError
from .pickle_scan import MAX_DIMS
from .tensor_checks import MAX_DIM, plain_int, short, to_native

DTYPES = {
    "F64": np.dtype("float64"),
    "F32": np.dtype("float32"),
    "F16": np.dtype("float16"),
    "BF16": np.dtype("uint16"),
    "I64": np.dtype("int64"),
    "I32": np.dtype("int32"),
    "I16": np.dtype("int16"),
    "I8": np.dtype("int8"),
    "U64": np.dtype("uint64"),
    "U32": np.dtype("uint32"),
    "U16": np.dtype("uint16"),
    "U8": np.dtype("uint8"),
    "BOOL": np.dtype("bool"),
}
MAX_HEADER = 100 * 1024 * 1024


def looks_like_safetensors(head):
    if len(head) < 9:
        return False
    return head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] <= MAX_HEADER


def load_safetensors(path, buffer, cancel=None):
    (header_len,) = struct.unpack_from("<Q", buffer, 0)
    data_start = 8 + header_len
    if data_start > len(buffer):
        raise CheckpointError(f"{path}: truncated safetensors file (header runs past the end)")
    try:
        header = json.loads(bytes(buffer[8:data_start]).decode("utf-8"))
    except RecursionError:
        raise CheckpointError(f"{path}: corrupt safetensors header (JSON nested too deeply)") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt safetensors header ({str(exc)[:120]})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: corrupt safetensors header (__metadata__ must map strings to strings)")
    data = memoryview(buffer)[data_start:]
    entries = [(name, _entry(path, name, entry, len(data))) for name, entry in header.items()]
    previous_end, previous = 0, None
    for name, (_, _, begin, end) in sorted(entries, key=lambda item: item[1][2:]):
        if begin < previous_end:
            raise CheckpointError(
                f"{path}: tensor {short(name)} overlaps tensor {short(previous)} in the data section"
            )
        previous_end, previous = max(previous_end, end), name
    state = {}
    for count, (name, (dtype_name, shape, begin, end)) in enumerate(entries):
        if count % 256 == 0:
            check_cancel(cancel, f"reading {path}")
        array = np.frombuffer(data[begin:end], dtype=DTYPES[dtype_name].newbyteorder("<"))
        state[name] = to_native(array.reshape(shape), bfloat16=dtype_name == "BF16")
    return state


def _entry(path, name, entry, data_len):
    """(dtype name, shape, begin, end) of a header entry, every field checked."""
    where = f"{path}: tensor {short(name)}"
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise CheckpointError(f"{where}: malformed safetensors entry (expected dtype, shape and data_offsets)")
    dtype_name, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    dtype = DTYPES.get(dtype_name) if isinstance(dtype_name, str) else None
    if dtype is None:
        raise CheckpointError(f"{where}: unsupported dtype {short(dtype_name)}")
    if (
        not isinstance(shape, list) or len(shape) > MAX_DIMS
        or not all(plain_int(n) and 0 <= n <= MAX_DIM for n in shape)
    ):
        raise CheckpointError(
            f"{where}: invalid shape (expected at most {MAX_DIMS} non-negative whole numbers below {MAX_DIM})"
        )
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(plain_int(n) for n in offsets)):
        raise CheckpointError(f"{where}: invalid data_offsets (expected [begin, end])")
    begin, end = offsets
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if begin < 0 or end - begin != expected:
        raise CheckpointError(f"{where}: data offsets [{begin}, {end}] do not fit shape {shape} of {dtype_name}")
    if end > data_len:
        raise CheckpointError(f"{path}: truncated safetensors file, tensor {short(name)} lies past the end")
    return dtype_name, shape, begin, end
