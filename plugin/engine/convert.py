"""Converts the official PyTorch checkpoints into a model folder of ONNX graphs.

The folder (see docs/ARCHITECTURE.md) is built in a temporary sibling and renamed into place
(:func:`.atomic.atomic_dir`), so a failure or an interrupt leaves no partial folder behind, and
a kill -9 leaves one that the next conversion into the same parent folder removes. Running the conversion again on
the same checkpoints with the same options finds the existing folder up to date and returns
without rewriting it.
"""

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path

import onnx

from .. import __version__
from .atomic import WriteError, atomic_dir, remove_leftovers, write_json_atomic
from .checkpoint import check_finite, load_state_dict
from .denoiser_layout import infer_denoiser_config
from .denoiser_onnx import build_denoiser
from .errors import CheckpointError, InputError
from .modalities import MODALITIES, VAE_SCALE
from .model_folder import INFO_FILE, file_entry, sha256_file
from .onnx_graph import OPSET, set_metadata
from .precision import DECODER_FILE, DENOISER_FILE, ENCODER_FILE, GRAPH_PRECISIONS, INT8_FILE, INT8_KEY
from .quantize import quantize_denoiser
from .schedule import BETA_END, BETA_START, NUM_TRAIN_STEPS
from .vae_layout import infer_vae_config, to_ldm_layout, validate_vae
from .vae_onnx import build_vae_decoder, build_vae_encoder

log = logging.getLogger(__name__)

MODEL_NAME = "COP-GEN-Beta"
FORMAT_VERSION = 1  # of the converted folder; bump when graphs or model.json change meaning
DENOISER_DATA_FILE = "denoiser.onnx.data"  # weights beside the graph: protobuf stops at 2 GB
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
            cancel=None):
    """Writes the model folder `out_dir` from the two checkpoints and returns its Path.

    heads: attention heads of the denoiser (not stored in the weights; official: 16).
    precision: "fp32", "fp16" (half weights and arithmetic, float32 inputs and outputs) or
    "int8" (the fp32 folder plus denoiser.int8.onnx, see plugin.engine.quantize).
    progress: optional callable(done, total, message).
    known_sha256: optional {"denoiser"/"vae": sha256} the caller already computed (the model
    manager hashes downloads as they arrive), so large checkpoints are not read again.
    cancel: optional callable; returning True stops the conversion (also while a checkpoint is
    read) with Cancelled, leaving no folder.
    Raises CheckpointError naming the file and the first offending key when a checkpoint does
    not fit the architecture, InputError for bad options or an `out_dir` that is not a model
    folder.
    """
    denoiser_path, vae_path, out_dir = Path(denoiser_path), Path(vae_path), Path(out_dir)
    if precision not in CONVERT_PRECISIONS:
        raise InputError(
            f"precision={precision!r}; expected one of {', '.join(CONVERT_PRECISIONS)}"
        )
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
        raise InputError(f"heads={heads!r}; expected a positive whole number")
    step = _Progress(progress)

    step("hashing the checkpoints")
    known_sha256 = known_sha256 or {}
    sources = {
        role: {"file": path.name, "sha256": _sha256_of_checkpoint(path, known_sha256.get(role), cancel)}
        for role, path in (("denoiser", denoiser_path), ("vae", vae_path))
    }
    options = {"num_heads": heads, "precision": _graph_precision(precision)}
    if _up_to_date(out_dir, sources, options, with_int8=precision == INT8_KEY):
        step.finish(f"{out_dir} is already converted from these checkpoints with these options")
        return out_dir
    _check_replaceable(out_dir)
    for path in (denoiser_path, vae_path):  # replacing the folder would delete its checkpoint
        if out_dir.resolve() in path.resolve().parents:
            raise InputError(f"{path} lies inside the output folder {out_dir}; choose another output")

    remove_leftovers(out_dir.parent)  # of conversions killed before they could clean up
    with atomic_dir(out_dir, verify=lambda work: _verify_folder(work, out_dir)) as work:
        info = _build_folder(
            work, denoiser_path, vae_path, sources, options, step, precision == INT8_KEY, cancel
        )
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


def _build_folder(work, denoiser_path, vae_path, sources, options, step, with_int8, cancel=None):
    precision, heads = options["precision"], options["num_heads"]

    # both checkpoints are checked before anything is built, so a wrong file fails fast
    step("reading the checkpoints")
    state = load_state_dict(denoiser_path, cancel)
    config = infer_denoiser_config(state, denoiser_path, num_heads=heads)
    vae_state = to_ldm_layout(load_state_dict(vae_path, cancel), vae_path)
    # NaN or Inf weights would only show as black outputs much later, naming no file
    check_finite(state, denoiser_path, cancel)
    check_finite(vae_state, vae_path, cancel)
    vae_config = infer_vae_config(vae_state, vae_path)
    validate_vae(vae_state, vae_config, vae_path)
    metadata = _metadata(config, options)

    step(f"building and writing {ENCODER_FILE} and {DECODER_FILE}")
    for name, build in ((ENCODER_FILE, build_vae_encoder), (DECODER_FILE, build_vae_decoder)):
        model = build(vae_state, vae_config, precision, cancel=cancel)
        set_metadata(model, metadata)
        onnx.save_model(model, os.fspath(work / name))
    del model, vae_state

    step(f"building and writing {DENOISER_FILE}")
    # the weights stream into the data file as the graph is built
    model = build_denoiser(state, config, precision, external_data=work / DENOISER_DATA_FILE, cancel=cancel)
    del state
    set_metadata(model, metadata)
    onnx.save_model(model, os.fspath(work / DENOISER_FILE))
    del model
    int8 = {}
    if with_int8:
        log.info("quantising %s to int8", DENOISER_FILE)
        int8 = {INT8_KEY: quantize_denoiser(work / DENOISER_FILE, work / INT8_FILE)}

    step("hashing the ONNX files")
    files = {
        path.name: file_entry(path)
        for path in sorted(work.iterdir())
    }
    return {
        **_essentials(config, options),
        "schedule": SCHEDULE,
        "denoiser": dataclasses.asdict(config),
        "vae": dataclasses.asdict(vae_config),
        "sources": sources,
        "files": files,
        "software": {"name": "copgen_beta", "version": __version__, "onnx_opset": OPSET},
        **int8,
    }


def _essentials(config, options):
    return {
        "name": MODEL_NAME,
        "version": FORMAT_VERSION,
        "modalities": list(MODALITIES),
        "latent_shape": [config.in_chans, config.img_size, config.img_size],
        "scale_factor": VAE_SCALE,
        "num_heads": options["num_heads"],
        "precision": options["precision"],
    }


def _metadata(config, options):
    """model.json's essentials as ONNX metadata_props (values JSON-encoded)."""
    essentials = {**_essentials(config, options), "software_version": __version__}
    return {key: json.dumps(value) for key, value in essentials.items()}


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

