"""Small checks and conversions every checkpoint reader shares (PyTorch zip, safetensors)."""

import numpy as np

MAX_DIM = 1 << 40  # of any tensor dimension
_NAME_CHARS = 80  # of a tensor name in a message


def short(text):
    """A name cut to a length fit for a one-line message."""
    text = str(text)
    return text if len(text) <= _NAME_CHARS else text[: _NAME_CHARS - 3] + "..."


def to_native(array, bfloat16=False):
    """bfloat16 bits -> float32, big-endian -> native; everything else stays a zero-copy view."""
    if bfloat16:
        return (array.astype(np.uint32) << 16).view(np.float32)
    if not array.dtype.isnative and array.dtype.itemsize > 1:
        return array.astype(array.dtype.newbyteorder("="))
    return array


def plain_int(value):
    return isinstance(value, int) and not isinstance(value, bool)
