"""Converts the official PyTorch checkpoints into a model folder of ONNX graphs.

The family (COP-GEN-Beta or COP-GEN) is recognised from the denoiser checkpoint; its
package writes the graphs (``families/<family>/convert.py``), this module does what every
conversion shares: options, hashes, the up-to-date check, and the atomic folder. The folder
(see docs/ARCHITECTURE.md) is built in a temporary sibling and renamed into place
(:func:`.atomic.atomic_dir`), so a failure or an interrupt leaves no partial folder behind, and
a kill -9 leaves one that the next conversion into the same parent folder removes. Running the
conversion again on the same checkpoints with the same options finds the existing folder up
to date and returns without rewriting it.
"""

import json
import logging
import os
import shutil
from pathlib import Path

from .. import __version__
from .atomic import WriteError, atomic_dir, remove_leftovers, write_json_atomic
from .checkpoint import load_state_dict
from .errors import CheckpointError, InputError
from .families import FAMILY_KEY, converter
from .families.recognise import recognise_denoiser
from .model_folder import INFO_FILE, file_entry, sha256_file
from .onnx_graph import OPSET
from .precision import GRAPH_PRECISIONS, INT8_KEY
from .schedule import BETA_END, BETA_START, NUM_TRAIN_STEPS

log = logging.getLogger(__name__)

SCHEDULE = {
    "type": "discrete",
    "beta_schedule": "scaled_linear",
    "beta_start": BETA_START,
    "beta_end": BETA_END,
    "num_train_timesteps": NUM_TRAIN_STEPS,
    "network_time_scale": NUM_TRAIN_STEPS,
}
STEPS = 5  # progress steps of a full conversion
# "int8": the fp32 graphs plus an int8 denoiser for the CPU (plugin.engine.quantize)
CONVERT_PRECISIONS = GRAPH_PRECISIONS


def convert(denoiser_path, vae_path, out_dir, heads=16, precision="fp32", progress=None, known_sha256=None,
            cancel=None, vae_dir=None):
    """Writes the model folder `out_dir` from the checkpoints and returns its Path.

    COP-GEN-Beta: ``vae_path`` is its one autoencoder. COP-GEN: ``vae_path`` is None and
    ``vae_dir`` the official ``copgen-vaes`` layout (``<folder>/model-50-ema.pth`` per image
    modality). Which one the denoiser is, is read from its weights.

    heads: attention heads of the denoiser (not stored in the weights; official: 16).
    precision: "fp32", "fp16" (half weights and arithmetic, float32 inputs and outputs) or
    "int8" (the fp32 folder plus denoiser.int8.onnx, see plugin.engine.quantize).
    progress: optional callable(done, total, message).
    known_sha256: optional {role: sha256} the caller already computed (the model
    manager hashes downloads as they arrive), so large checkpoints are not read again.
    cancel: optional callable; returning True stops the conversion (also while a checkpoint is
    read) with Cancelled, leaving no folder.
    Raises CheckpointError naming the file and the first offending key when a checkpoint does
    not fit the architecture, InputError for bad options or an `out_dir` that is not a model
    folder.
    """
    denoiser_path, out_dir = Path(denoiser_path), Path(out_dir)
    if precision not in CONVERT_PRECISIONS:
        raise InputError(
            f"precision={precision!r}; expected one of {', '.join(CONVERT_PRECISIONS)}"
        )
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
        raise InputError(f"heads={heads!r}; expected a positive whole number")
    step = _Progress(progress)
    if not denoiser_path.is_file():
        raise CheckpointError(f"{denoiser_path}: checkpoint file not found")
    step("reading the checkpoints")
    # memory-mapped: recognising the family reads little more than the pickle
    state = load_state_dict(denoiser_path, cancel)
    family_name = recognise_denoiser(state, denoiser_path)
    builder = converter(family_name)
    files = builder.checkpoints(denoiser_path, vae_path, vae_dir)

    step("hashing the checkpoints")
    known_sha256 = known_sha256 or {}
    sources = {
        role: {"file": path.name, "sha256": _sha256_of_checkpoint(path, known_sha256.get(role), cancel)}
        for role, path in files.items()
    }
    options = {"num_heads": heads, "precision": _graph_precision(precision)}
    if _up_to_date(out_dir, sources, options, with_int8=precision == INT8_KEY):
        step.finish(f"{out_dir} is already converted from these checkpoints with these options")
        return out_dir
    _check_replaceable(out_dir)
    for path in files.values():  # replacing the folder would delete its checkpoint
        if out_dir.resolve() in path.resolve().parents:
            raise InputError(f"{path} lies inside the output folder {out_dir}; choose another output")

    remove_leftovers(out_dir.parent)  # of conversions killed before they could clean up
    with atomic_dir(out_dir, verify=lambda work: _verify_folder(work, out_dir)) as work:
        info = builder.build_folder(work, state, files, options, step, precision == INT8_KEY, cancel)
        step("hashing the ONNX files")
        info.update({
            FAMILY_KEY: family_name,
            "schedule": SCHEDULE,
            "sources": sources,
            "files": {path.name: file_entry(path) for path in sorted(work.iterdir())},
            "software": {"name": "copgen_beta", "version": __version__, "onnx_opset": OPSET},
        })
        write_json_atomic(work / INFO_FILE, info)
        _keep_other_files(out_dir, work)
    step.finish(f"wrote {out_dir}")
    return out_dir


class _Progress:
    def __init__(self, callback):
        self._callback = callback
        self._done = 0

    def __call__(self, message):
        log.info(message)
        if self._callback:
            self._callback(self._done, STEPS, message)
        self._done += 1

    def finish(self, message):
        log.info(message)
        if self._callback:
            self._callback(STEPS, STEPS, message)


def _graph_precision(precision):
    return "fp32" if precision == INT8_KEY else precision


def _up_to_date(out_dir, sources, options, with_int8=False):
    try:
        info = json.loads((out_dir / INFO_FILE).read_text(encoding="utf-8"))
        return (
            (INT8_KEY in info or not with_int8)
            and info["sources"] == sources
            and info["num_heads"] == options["num_heads"]
            and info["precision"] == options["precision"]
            and info["software"]["version"] == __version__
            and all(
                (out_dir / name).stat().st_size == entry["bytes"]
                for name, entry in info["files"].items()
            )
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _check_replaceable(out_dir):
    """Only a model folder (or an empty one) may be replaced; never a user's other files."""
    if out_dir.exists() and not (out_dir / INFO_FILE).is_file():
        if not out_dir.is_dir() or any(out_dir.iterdir()):
            raise InputError(
                f"{out_dir} exists and is not a converted model folder; choose another output"
            )


def _keep_other_files(out_dir, work):
    """The files of an existing ``out_dir`` that are not its model's (not model.json nor listed
    in it) go into the new folder too, as hard links (copies across devices), so replacing the
    folder leaves them alone; until the swap the originals stay where they were."""
    if not (out_dir / INFO_FILE).is_file():
        return
    try:
        owned = set(json.loads((out_dir / INFO_FILE).read_text(encoding="utf-8")).get("files", {}))
    except (OSError, ValueError, AttributeError):
        owned = set()
    for entry in out_dir.iterdir():
        if entry.name in owned or entry.name == INFO_FILE or (work / entry.name).exists():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, work / entry.name, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, work / entry.name)


def _link_or_copy(source, target):
    if os.path.islink(source):
        os.symlink(os.readlink(source), target)
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _verify_folder(work, out_dir):
    """Every file model.json lists is there with the size recorded (written in full)."""
    info = json.loads((work / INFO_FILE).read_text(encoding="utf-8"))
    for name, entry in info["files"].items():
        size = (work / name).stat().st_size
        if size != entry["bytes"]:
            raise WriteError(f"cannot write {out_dir / name}: it has {size} bytes, {entry['bytes']} were written")


def _sha256_of_checkpoint(path, known=None, cancel=None):
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    return known or sha256_file(path, cancel)

