"""Write state dicts as PyTorch zip checkpoints or safetensors files, without PyTorch.

A development tool for tests (users only ever read checkpoints); safetensors files are written by
plugin.benchmarks.weights.save_safetensors (the bench command needs it), re-exported here. The ``.pth``
files follow the layout ``torch.save`` writes (``<name>/data.pkl``, ``<name>/data/<key>``,
64-byte aligned, stored uncompressed), so ``torch.load`` reads them. Tensor data is streamed
from the arrays in chunks: writing a 1.15 GB checkpoint needs little memory beyond the arrays.
"""

import os
import struct
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from plugin.benchmarks.weights import save_safetensors  # noqa: F401 (tests import it from here)

_CHUNK_BYTES = 16 * 1024 * 1024
_ALIGNMENT = 64  # torch.save aligns every member's data to 64 bytes
_PADDING_FIELD_ID = 0x4246  # the zip extra field torch uses for that padding ("FB")

_STORAGE_NAMES = {
    np.dtype("float32"): "FloatStorage",
    np.dtype("float16"): "HalfStorage",
    np.dtype("float64"): "DoubleStorage",
    np.dtype("int64"): "LongStorage",
    np.dtype("int32"): "IntStorage",
    np.dtype("int16"): "ShortStorage",
    np.dtype("int8"): "CharStorage",
    np.dtype("uint8"): "ByteStorage",
    np.dtype("bool"): "BoolStorage",
}



def save_pth(state, path, nest_under=None):
    """Write ``{name: array}`` as a PyTorch zip checkpoint holding an ``OrderedDict`` state dict,
    or ``{nest_under: state dict}`` as training scripts save it when ``nest_under`` is given."""
    arrays = {name: _little_endian(np.asarray(value)) for name, value in state.items()}
    for name, array in arrays.items():
        if array.dtype not in _STORAGE_NAMES:
            raise ValueError(f"{name}: dtype {array.dtype} has no torch storage type")
    storages = {str(index): array for index, array in enumerate(arrays.values())}
    pickled = state_dict_pickle(
        [(name, key, _STORAGE_NAMES[array.dtype], array.shape) for (name, array), key in zip(arrays.items(), storages)],
        nest_under,
    )
    write_torch_zip(path, pickled, storages)


def write_torch_zip(path, data_pkl, storages):
    """Write a torch zip archive from raw parts: ``data_pkl`` bytes and ``{key: array or bytes}``.

    Tests use this directly to craft hostile or damaged checkpoints.
    """
    path = Path(path)
    folder = path.name.split(".")[0] or "archive"
    with _atomic_file(path) as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
        _write_member(archive, f"{folder}/data.pkl", data_pkl)
        _write_member(archive, f"{folder}/.format_version", b"1")
        _write_member(archive, f"{folder}/.storage_alignment", str(_ALIGNMENT).encode())
        _write_member(archive, f"{folder}/byteorder", b"little")
        for key, data in storages.items():
            _write_member(archive, f"{folder}/data/{key}", data)
        _write_member(archive, f"{folder}/version", b"3\n")
        _write_member(archive, f"{folder}/.data/serialization_id", b"0" * 40)


def state_dict_pickle(entries, nest_under=None):
    """Pickle (protocol 2) of an ``OrderedDict`` of tensors as torch writes it.

    ``entries`` yields ``(name, storage_key, storage_type_name, shape)``; every tensor is
    contiguous and owns its whole storage. Written opcode by opcode because the globals
    (``torch._utils._rebuild_tensor_v2``, ``torch.FloatStorage``) cannot be imported here.
    With ``nest_under`` the result is ``{nest_under: state dict}``.
    """
    out = _PickleWriter()
    out.write(b"\x80\x02")  # PROTO 2
    if nest_under is not None:
        out.write(b"}")  # EMPTY_DICT: the wrapper
        out.unicode(nest_under)
    out.global_("collections", "OrderedDict")
    out.write(b")R")  # EMPTY_TUPLE, REDUCE -> the state dict
    out.write(b"(")  # MARK for SETITEMS
    for name, key, storage_name, shape in entries:
        numel = int(np.prod(shape, dtype=np.int64))
        out.unicode(name)
        out.global_("torch._utils", "_rebuild_tensor_v2")
        out.write(b"(")  # MARK: arguments of _rebuild_tensor_v2
        out.write(b"(")  # MARK: persistent id ('storage', type, key, location, numel)
        out.unicode("storage")
        out.global_("torch", storage_name)
        out.unicode(key)
        out.unicode("cpu")
        out.int_(numel)
        out.write(b"tQ")  # TUPLE, BINPERSID
        out.int_(0)  # storage offset
        out.tuple_(shape)
        out.tuple_(_contiguous_strides(shape))
        out.write(b"\x89")  # NEWFALSE: requires_grad
        out.global_("collections", "OrderedDict")
        out.write(b")R")  # backward hooks: empty OrderedDict
        out.write(b"tR")  # TUPLE, REDUCE -> the tensor
    out.write(b"u")  # SETITEMS
    if nest_under is not None:
        out.write(b"s")  # SETITEM: wrapper[nest_under] = state dict
    out.write(b".")  # STOP
    return out.getvalue()


# ---------------------------------------------------------------------------------------------


class _PickleWriter:
    def __init__(self):
        self._parts = []
        self._memo = {}

    def write(self, data):
        self._parts.append(data)

    def getvalue(self):
        return b"".join(self._parts)

    def global_(self, module, name):
        """GLOBAL once, then BINGET/LONG_BINGET from the memo, as pickle itself would."""
        slot = self._memo.get((module, name))
        if slot is None:
            slot = self._memo[(module, name)] = len(self._memo)
            self.write(f"c{module}\n{name}\n".encode("ascii") + _memo_op(b"q", b"r", slot))
        else:
            self.write(_memo_op(b"h", b"j", slot))

    def unicode(self, text):
        data = text.encode("utf-8")
        self.write(b"X" + struct.pack("<I", len(data)) + data)

    def int_(self, value):
        if 0 <= value < 256:
            self.write(b"K" + struct.pack("<B", value))
        elif 0 <= value < 65536:
            self.write(b"M" + struct.pack("<H", value))
        elif -(2**31) <= value < 2**31:
            self.write(b"J" + struct.pack("<i", value))
        else:
            data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            self.write(b"\x8a" + struct.pack("<B", len(data)) + data)  # LONG1

    def tuple_(self, values):
        self.write(b"(")
        for value in values:
            self.int_(int(value))
        self.write(b"t")


def _memo_op(short_op, long_op, slot):
    return short_op + struct.pack("<B", slot) if slot < 256 else long_op + struct.pack("<I", slot)


def _contiguous_strides(shape):
    strides, step = [], 1
    for size in reversed(tuple(shape)):
        strides.append(step)
        step *= max(int(size), 1)
    return tuple(reversed(strides))


def _little_endian(array):
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and not np.little_endian):
        return array.astype(array.dtype.newbyteorder("<"))
    return array


def _write_member(archive, name, data):
    """Store one member uncompressed with its data aligned like torch.save does."""
    if isinstance(data, np.ndarray):
        size = data.nbytes
    else:
        data = bytes(data)
        size = len(data)
    if size * 1.05 > zipfile.ZIP64_LIMIT:
        raise ValueError(f"{name}: members over 2 GB are not supported")
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = size
    # The local header is 30 bytes + name + extra; pad the extra field so data starts aligned.
    header_end = archive.fp.tell() + 30 + len(name.encode("utf-8")) + 4
    padding = -header_end % _ALIGNMENT
    info.extra = struct.pack("<HH", _PADDING_FIELD_ID, padding) + b"Z" * padding
    with archive.open(info, "w") as member:
        if isinstance(data, np.ndarray):
            _write_array(member, data)
        else:
            member.write(data)


def _write_array(handle, array):
    """Stream an array's bytes in C order without copying it whole."""
    flat = np.ascontiguousarray(array).reshape(-1)
    step = max(1, _CHUNK_BYTES // max(flat.itemsize, 1))
    for start in range(0, flat.size, step):
        handle.write(flat[start : start + step].view(np.uint8).tobytes())


@contextmanager
def _atomic_file(path):
    """Yield a temporary sibling of ``path`` opened for writing; rename it into place on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(temp_name, path)
    except BaseException:
        os.unlink(temp_name)
        raise
