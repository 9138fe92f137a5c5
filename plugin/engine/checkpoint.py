"""Read model weights without PyTorch and without running code from the file.

``load_state_dict(path)`` understands PyTorch zip checkpoints (``torch.save`` since 1.6) and
``.safetensors`` files; the format is recognised from the file's first bytes, not its name.
Tensors are numpy views into a read-only memory map of the file, so a 1.15 GB checkpoint costs
little more than the pages actually touched (bfloat16 and big-endian data are the exceptions:
they are converted, which copies).

A hostile file gets time and memory proportional to its size, and one line naming the file
(and tensor): the pickle is checked before it is unpickled (:mod:`.pickle_scan`), every tensor
must lie inside its storage without zero or overlapping strides, and all tensors together may
not describe more than ``MAX_EXPANSION`` times the file's bytes. Messages show names and shapes,
never pickled data.
"""

import collections
import io
import mmap
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

from .cancel import check_cancel
from .errors import CheckpointError
from .pickle_scan import MAX_DIMS, scan_state_dict_pickle
from .safetensors_reader import load_safetensors, looks_like_safetensors
from .tensor_checks import MAX_DIM, short, to_native

# torch.<Name>Storage -> numpy dtype of one element. bfloat16 is read as raw uint16 bits.
_TORCH_STORAGES = {
    "FloatStorage": np.dtype("float32"),
    "HalfStorage": np.dtype("float16"),
    "BFloat16Storage": np.dtype("uint16"),
    "DoubleStorage": np.dtype("float64"),
    "LongStorage": np.dtype("int64"),
    "IntStorage": np.dtype("int32"),
    "ShortStorage": np.dtype("int16"),
    "CharStorage": np.dtype("int8"),
    "ByteStorage": np.dtype("uint8"),
    "BoolStorage": np.dtype("bool"),
}

# Wrapper keys under which training scripts commonly nest the weights.
_NESTING_KEYS = ("state_dict", "model")

_ZIP_MAGIC = b"PK\x03\x04"
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length
# Tensors sharing storages may describe more bytes than the file holds, but not many times more.
MAX_EXPANSION = 2
_EXPANSION_SLACK = 1 << 16
MAX_ARCHIVE_MEMBERS = 100_000  # a state dict's storages; the official denoiser has about 600


def load_state_dict(path, cancel=None):
    """Return ``{name: numpy array}`` from a PyTorch zip checkpoint or a safetensors file.

    Raises :class:`CheckpointError` naming the file (and tensor where known) when the file is
    missing, truncated, corrupt, in an unsupported format, or asks for anything besides tensors.
    ``cancel()`` returning True stops the reading with :class:`Cancelled`.
    """
    path = Path(path)
    buffer = _map_file(path)
    head = bytes(buffer[:16])
    if head.startswith(_ZIP_MAGIC):
        state = _load_torch_zip(path, buffer, cancel)
    elif looks_like_safetensors(head):
        state = load_safetensors(path, buffer, cancel)
    elif head[:1] == b"\x80":
        raise CheckpointError(
            f"{path}: legacy (pre-zip) PyTorch pickle checkpoint; only the zip format written by "
            "torch.save since PyTorch 1.6, or .safetensors, can be read safely"
        )
    else:
        raise CheckpointError(f"{path}: neither a PyTorch zip checkpoint nor a safetensors file")
    return _unwrap(path, state)


def _map_file(path):
    try:
        with open(path, "rb") as handle:
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint file not found") from None
    except (OSError, ValueError) as exc:  # ValueError: empty file cannot be mapped
        raise CheckpointError(f"{path}: cannot read checkpoint ({exc})") from None


# ---------------------------------------------------------------------------------------------
# PyTorch zip checkpoints


def _load_torch_zip(path, buffer, cancel):
    members = _archive_member_count(buffer)
    if members is not None and members > MAX_ARCHIVE_MEMBERS:
        # zipfile parses the whole directory at once, deaf to a cancel: refuse it before
        raise CheckpointError(
            f"{path}: the archive holds {members} members; a state dict has far fewer "
            f"(at most {MAX_ARCHIVE_MEMBERS} accepted)"
        )
    try:
        archive = zipfile.ZipFile(_MappedFile(buffer, _cancel_check(path, cancel)))
        members = {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint archive ({exc})") from None
    pickles = [name for name in members if name.endswith("data.pkl") and name.count("/") == 1]
    if not pickles:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (no <name>/data.pkl inside)")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in members:
        byteorder = _member_bytes(path, buffer, members[prefix + "byteorder"]).decode("ascii", "replace")
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"{path}: unknown byte order {byteorder!r}")

    def storage_bytes(key):
        info = members.get(f"{prefix}data/{key}")
        if info is None:
            raise CheckpointError(f"{path}: storage data/{key} is missing from the archive")
        return _member_view(path, buffer, info)

    pickled = _member_bytes(path, buffer, members[pickles[0]])
    scan_state_dict_pickle(pickled, path, cancel)  # before the C unpickler sees any of it
    budget = MAX_EXPANSION * len(buffer) + _EXPANSION_SLACK
    unpickler = _SafeUnpickler(pickled, path, storage_bytes, "<" if byteorder == "little" else ">", budget)
    unpickler.check_cancel = _cancel_check(path, cancel)
    try:
        return unpickler.load()
    except CheckpointError:
        raise
    except Exception as exc:  # any malformed pickle: report, never crash with internals
        raise CheckpointError(f"{path}: corrupt checkpoint pickle ({type(exc).__name__})") from None
    finally:
        # The unpickler's memo and its bound-method table form a cycle that pins every storage
        # view (and so the whole file mapping) after the caller has dropped the state dict.
        unpickler.release()


def _cancel_check(path, cancel, every=1024):
    """A function to call often: every ``every`` calls it raises Cancelled if ``cancel()``."""
    calls = [0]

    def check():
        calls[0] += 1
        if calls[0] % every == 0:
            check_cancel(cancel, f"reading {path}")

    return check


def _archive_member_count(buffer):
    """Number of members the zip's end-of-central-directory record declares (zip64 too), or
    None when it cannot be found (zipfile then reports the damage)."""
    tail_start = max(0, len(buffer) - (1 << 16) - 22)
    tail = bytes(buffer[tail_start:])
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or end + 22 > len(tail):
        return None
    count = struct.unpack_from("<H", tail, end + 10)[0]
    locator = end - 20
    if count == 0xFFFF and locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        record = struct.unpack_from("<Q", tail, locator + 8)[0]
        if record + 40 <= len(buffer) and bytes(buffer[record : record + 4]) == b"PK\x06\x06":
            count = struct.unpack_from("<Q", buffer, record + 32)[0]
    return count


class _MappedFile:
    """Minimal seekable read-only file over a memory map, so zipfile copies nothing big.
    ``check`` is called on every read: zipfile reads each member's directory entry, so a cancel
    is seen while an archive of many members is opened."""

    def __init__(self, buffer, check=None):
        self._buffer = buffer
        self._pos = 0
        self._check = check or (lambda: None)

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=0):
        base = (0, self._pos, len(self._buffer))[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size=-1):
        self._check()
        end = len(self._buffer) if size is None or size < 0 else self._pos + size
        data = self._buffer[self._pos : end]
        self._pos += len(data)
        return data


def _member_view(path, buffer, info):
    """Zero-copy memoryview of a stored (uncompressed) archive member."""
    if info.compress_type != zipfile.ZIP_STORED:
        raise CheckpointError(f"{path}: archive member {info.filename} is compressed; torch.save never does that")
    start = info.header_offset
    if start + _LOCAL_HEADER.size > len(buffer):
        raise CheckpointError(f"{path}: truncated checkpoint, {info.filename} lies past the end")
    signature, name_len, extra_len = _LOCAL_HEADER.unpack_from(buffer, start)
    if signature != _ZIP_MAGIC:
        raise CheckpointError(f"{path}: corrupt archive header for {info.filename}")
    data_start = start + _LOCAL_HEADER.size + name_len + extra_len
    if data_start + info.file_size > len(buffer):
        raise CheckpointError(f"{path}: truncated checkpoint, {info.filename} lies past the end")
    return memoryview(buffer)[data_start : data_start + info.file_size]


def _member_bytes(path, buffer, info):
    return bytes(_member_view(path, buffer, info))


class _Storage:
    """A typed torch storage: its element type and the raw bytes of its archive member."""

    def __init__(self, dtype, raw, numel, key, bfloat16):
        self.dtype = dtype
        self.raw = raw
        self.numel = numel
        self.key = key
        self.bfloat16 = bfloat16


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that can only build ordered dicts and tensors; any other global is refused
    in ``find_class``, i.e. before the pickle can call it."""

    def __init__(self, data, path, storage_bytes, byte_prefix, budget):
        super().__init__(io.BytesIO(data))
        self._budget = budget  # bytes all tensors together may describe
        self.check_cancel = lambda: None
        self._path = path
        self._storage_bytes = storage_bytes
        self._byte_prefix = byte_prefix
        self._storages = {}
        self._globals = {
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): self._rebuild_parameter,
        }
        for name, dtype in _TORCH_STORAGES.items():
            self._globals[("torch", name)] = _StorageType(name, dtype)

    def release(self):
        self.memo.clear()
        self._globals.clear()
        self._storages.clear()

    def find_class(self, module, name):
        allowed = self._globals.get((module, name))
        if allowed is None:
            raise CheckpointError(
                f"{self._path}: refused to load, the checkpoint asks for the global "
                f"{short(module)}.{short(name)}, which is not needed for model weights (possibly malicious)"
            )
        return allowed

    def persistent_load(self, pid):
        # the pickle scan let through only ("storage", type, "key", "location", int)
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"{self._path}: unsupported persistent reference")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or not isinstance(key, str):
            raise CheckpointError(f"{self._path}: malformed storage reference")
        key = short(key)
        if key not in self._storages:
            dtype = storage_type.dtype.newbyteorder(self._byte_prefix)
            raw = self._storage_bytes(key)
            if numel < 0 or len(raw) < numel * dtype.itemsize:
                raise CheckpointError(
                    f"{self._path}: storage data/{key} holds {len(raw)} bytes, "
                    f"{numel} x {storage_type.name} needs {numel * dtype.itemsize}"
                )
            bfloat16 = storage_type.name == "BFloat16Storage"
            self._storages[key] = _Storage(dtype, raw, numel, key, bfloat16)
        return self._storages[key]

    def _rebuild_tensor(self, storage, storage_offset, size, stride, *_ignored):
        self.check_cancel()
        if not isinstance(storage, _Storage):
            raise CheckpointError(f"{self._path}: tensor without a storage")
        size, stride = tuple(int(n) for n in size), tuple(int(n) for n in stride)
        where = f"{self._path}: tensor in data/{storage.key}"
        if (
            len(size) != len(stride) or len(size) > MAX_DIMS
            or min(size + stride + (storage_offset,), default=0) < 0 or max(size, default=0) > MAX_DIM
        ):
            raise CheckpointError(f"{where} has an invalid shape {short(size)} or strides {short(stride)}")
        if 0 not in size:
            last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
            if last >= storage.numel:
                raise CheckpointError(f"{where}, shape {size}, reads past the end of its storage")
            if _overlapping(size, stride):
                raise CheckpointError(
                    f"{where}, shape {size}, has zero or overlapping strides {stride}: it would repeat "
                    "the same stored values (refused: that inflates a small file into a huge tensor)"
                )
        itemsize = storage.dtype.itemsize
        self._budget -= int(np.prod(size, dtype=object)) * itemsize
        if self._budget < 0:
            raise CheckpointError(
                f"{self._path}: its tensors describe more than {MAX_EXPANSION} times the bytes the file "
                f"holds (refused at the tensor of shape {size} in data/{storage.key})"
            )
        array = np.ndarray(
            size,
            dtype=storage.dtype,
            buffer=storage.raw,
            offset=storage_offset * itemsize if 0 not in size else 0,
            strides=tuple(s * itemsize for s in stride),
        )
        return to_native(array, bfloat16=storage.bfloat16)

    @staticmethod
    def _rebuild_parameter(data, _requires_grad, _backward_hooks):
        return data


def _overlapping(size, stride):
    """True when two indexes of a (non-empty) tensor reach the same element of its storage."""
    dims = sorted((s, n) for n, s in zip(size, stride) if n > 1)
    span = 1  # elements covered by the dimensions checked so far
    for s, n in dims:
        if s < span:
            return True
        span = s * n
    return False


class _StorageType:
    """Stand-in for ``torch.<Name>Storage``: only ever used as a tag in storage references."""

    def __init__(self, name, dtype):
        self.name = name
        self.dtype = dtype


# ---------------------------------------------------------------------------------------------


def _unwrap(path, obj):
    """Return the flat ``{name: array}`` mapping, looking one level into a wrapper dict."""
    if _is_state_dict(obj):
        return dict(obj)
    if isinstance(obj, dict):
        for key in _NESTING_KEYS:
            if _is_state_dict(obj.get(key)):
                return dict(obj[key])
        nested = [value for value in obj.values() if _is_state_dict(value)]
        if len(nested) == 1:
            return dict(nested[0])
        keys = ", ".join(short(key) if isinstance(key, str) else type(key).__name__ for key in list(obj)[:8])
        raise CheckpointError(f"{path}: no state dict of tensors found (top-level keys: {keys})")
    raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state dict of tensors")


def _is_state_dict(obj):
    return (
        isinstance(obj, dict)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items())
    )


def check_finite(state, path, cancel=None):
    """CheckpointError naming the first float tensor of ``state`` holding NaN or Inf; read in
    blocks, so the check needs little memory beyond the file's own pages."""
    block = 1 << 22
    for name, array in state.items():
        if array.dtype.kind != "f":
            continue
        flat = array.reshape(-1)
        for start in range(0, flat.size, block):
            check_cancel(cancel, f"checking {path}")
            if not np.isfinite(flat[start : start + block]).all():
                raise CheckpointError(
                    f"{path}: tensor {short(name)} {tuple(array.shape)} holds NaN or infinite weights; "
                    "the checkpoint is damaged"
                )
