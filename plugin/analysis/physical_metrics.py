"""How close a generated COP-GEN layer is to the real one, in the layer's own physical unit.

Measurements are compared band by band over the pixels valid in both: mean absolute error,
root mean square error and bias (generated minus real) in the unit the files store (S2 DN,
DEM metres) and Pearson's correlation, which does not depend on the unit. Sentinel-1 is
compared in dB (10 log10 of linear gamma0; values <= 0 taken as the model's floor, as the
model sees them): errors of linear backscatter are dominated by a few bright pixels, and dB is
how backscatter is read. Class maps (land
cover, cloud mask) are compared as classes, never as numbers: pixel accuracy and the mean
intersection over union of the classes present in either map.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..engine.errors import InputError
from ..engine.families.copgen.classes import CLASS_MAPS
from ..engine.families.copgen.processing import s1_linear_to_db
from ..engine.families.copgen.registry import get_modality

METRIC_FIELDS = ("pixels", "mae", "rmse", "bias", "correlation", "accuracy", "miou")


@dataclass(frozen=True)
class BandComparison:
    """One band of one modality: ``pixels`` compared; the measurement figures (``mae``,
    ``rmse``, ``bias`` in ``unit``; ``correlation``) or the class figures (``accuracy``,
    ``miou``, fractions 0..1), the others None."""

    modality: str
    band: str
    unit: str
    pixels: int
    mae: Optional[float] = None
    rmse: Optional[float] = None
    bias: Optional[float] = None
    correlation: Optional[float] = None
    accuracy: Optional[float] = None
    miou: Optional[float] = None

    def describe(self):
        """The figures in words, with their units (one log line)."""
        if self.accuracy is not None:
            return f"pixel accuracy {self.accuracy:.3f} | mean IoU {self.miou:.3f} ({self.pixels} px)"
        correlation = "n/a" if self.correlation is None else f"{self.correlation:.3f}"
        return (f"MAE {self.mae:.4g} {self.unit} | RMSE {self.rmse:.4g} {self.unit} | bias {self.bias:+.4g} "
                f"{self.unit} | r {correlation} ({self.pixels} px)")


def compare_modality(key, real, real_valid, generated, generated_valid):
    """[BandComparison] of modality ``key`` (official key): ``real`` and ``generated`` are its
    physical values [C, H, W] on one grid, the masks bool [H, W]. InputError when the shapes
    differ or no pixel is valid in both."""
    record = get_modality(key)
    real, generated = np.asarray(real, np.float64), np.asarray(generated, np.float64)
    if real.ndim == 2:
        real, generated = real[None], generated[None]
    if real.shape != generated.shape or real.shape[0] != len(record.bands):
        raise InputError(f"{key}: cannot compare values of shapes {real.shape} and {generated.shape}")
    valid = np.asarray(real_valid, bool) & np.asarray(generated_valid, bool)
    if valid.shape != real.shape[1:]:
        raise InputError(f"{key}: masks of shape {valid.shape} do not match values of shape {real.shape}")
    if record.processing in CLASS_MAPS:
        ok = valid & np.isfinite(real[0]) & np.isfinite(generated[0])
        _some(ok, key)
        accuracy, miou = class_agreement(real[0][ok], generated[0][ok])
        return [BandComparison(key, record.bands[0], "class", int(ok.sum()), accuracy=accuracy, miou=miou)]
    unit = "DN" if record.processing == "s2" else record.unit  # S2: reflectance x 10000
    if record.processing == "s1":
        with np.errstate(divide="ignore", invalid="ignore"):
            real, generated = s1_linear_to_db(real), s1_linear_to_db(generated)
        unit = "dB"
    rows = []
    for band, a, b in zip(record.bands, real, generated):
        ok = valid & np.isfinite(a) & np.isfinite(b)
        _some(ok, f"{key} {band}")
        mae, rmse, bias, correlation = measurement_errors(a[ok], b[ok])
        rows.append(BandComparison(key, band, unit, int(ok.sum()), mae, rmse, bias, correlation))
    return rows


def measurement_errors(real, generated):
    """(MAE, RMSE, bias, Pearson r) of two 1-D arrays; r is None when either is constant."""
    difference = generated - real
    mae = float(np.abs(difference).mean())
    rmse = float(np.sqrt((difference ** 2).mean()))
    bias = float(difference.mean())
    a, b = real - real.mean(), generated - generated.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    correlation = float((a * b).sum() / denominator) if denominator > 0 else None
    return mae, rmse, bias, correlation


def class_agreement(real, generated):
    """(pixel accuracy, mean IoU) of two 1-D arrays of class codes; the mean runs over the
    classes present in either array (a class absent from both says nothing)."""
    real, generated = np.rint(real).astype(np.int64), np.rint(generated).astype(np.int64)
    accuracy = float((real == generated).mean())
    ious = []
    for code in np.union1d(real, generated):
        in_real, in_generated = real == code, generated == code
        ious.append((in_real & in_generated).sum() / (in_real | in_generated).sum())
    return accuracy, float(np.mean(ious))


def _some(valid, what):
    if not valid.any():
        raise InputError(f"{what}: no valid pixel in common between the real and the generated layer")
