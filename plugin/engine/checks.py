"""Argument checks the models share: arrays and counts, refused with one InputError line."""

import numpy as np

from .errors import InputError


def float_array(name, value, shape):
    """value as a C-contiguous float32 array of ``shape`` (None matches any length), or
    InputError naming ``name``: wrong dtype, shape, emptiness or non-finite values."""
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{name} must hold floating-point values, got dtype {array.dtype}")
    mismatch = any(want is not None and got != want for got, want in zip(array.shape, shape))
    if array.ndim != len(shape) or mismatch:
        expected = ", ".join("N" if want is None else str(want) for want in shape)
        raise InputError(f"{name} must have shape [{expected}], got {list(array.shape)}")
    if not array.size:
        raise InputError(f"{name} is empty (shape {list(array.shape)})")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name} contains NaN or infinite values")
    return np.ascontiguousarray(array, dtype=np.float32)


def count(name, value):
    """value as an int >= 1, or InputError naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)


def agreed_batch(sizes):
    """The one batch size that every entry of {what: size} agrees on (1 if none says)."""
    if len(set(sizes.values())) > 1:
        found = ", ".join(f"{name}: {size}" for name, size in sizes.items())
        raise InputError(f"inconsistent batch sizes ({found})")
    return next(iter(sizes.values()), 1)
