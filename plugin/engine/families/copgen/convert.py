"""COP-GEN's part of a conversion: the denoiser and one VAE per image modality."""

import dataclasses
from pathlib import Path

from ...checkpoint import check_finite, load_state_dict
from ...errors import InputError
from ...model_folder import DENOISER_FILE
from ...folder_writer import write_denoiser, write_graph
from . import LABEL, vae_role
from .denoiser_layout import infer_copgen_config
from .denoiser_onnx import build_copgen_denoiser
from .files import decoder_name, encoder_name
from .registry import BY_KEY, IMAGE_MODALITIES, MODALITIES
from .vae_graphs import build_copgen_vae

FORMAT_VERSION = 1
VAE_FILE = "model-50-ema.pth"  # inside each official copgen-vaes folder


def checkpoints(denoiser_path, vae_path=None, vae_dir=None):
    """{role: path}: the denoiser and the ten VAEs of an official ``copgen-vaes`` folder.
    One InputError line for a missing folder or VAE, or a folder no modality uses."""
    if vae_dir is None or vae_path is not None:
        raise InputError(
            f"{denoiser_path} is a {LABEL} denoiser: give the folder of its ten VAEs "
            f"(--vae-dir DIR, the official copgen-vaes layout <folder>/{VAE_FILE})", "vae_dir",
        )
    vae_dir = Path(vae_dir)
    if not vae_dir.is_dir():
        raise InputError(f"{vae_dir} is not a folder", "vae_dir")
    files = {"denoiser": Path(denoiser_path)}
    missing = []
    for key in IMAGE_MODALITIES:
        path = vae_dir / BY_KEY[key].vae_folder / VAE_FILE
        if path.is_file():
            files[vae_role(key)] = path
        else:
            missing.append(f"{BY_KEY[key].vae_folder}/{VAE_FILE}")
    if missing:
        raise InputError(f"{vae_dir}: missing the VAE checkpoint {', '.join(missing)}", "vae_dir")
    known = {BY_KEY[key].vae_folder for key in IMAGE_MODALITIES}
    extra = sorted(p.name for p in vae_dir.iterdir() if p.is_dir() and (p / VAE_FILE).is_file() and p.name not in known)
    if extra:
        raise InputError(
            f"{vae_dir}: {', '.join(extra)} is a VAE no {LABEL} modality uses (expected only "
            f"{', '.join(sorted(known))})", "vae_dir",
        )
    return files


def build_folder(work, state, files, options, step, with_int8, cancel=None):
    """Writes the graphs into ``work`` and returns model.json's family part."""
    precision, heads = options["precision"], options["num_heads"]
    config = infer_copgen_config(state, files["denoiser"], num_heads=heads)
    check_finite(state, files["denoiser"], cancel)
    info = essentials(options)

    step(f"building and writing the {len(IMAGE_MODALITIES)} VAEs")
    vaes = {}
    for key in IMAGE_MODALITIES:
        path = files[vae_role(key)]
        graphs = build_copgen_vae(load_state_dict(path, cancel), BY_KEY[key], path, precision, cancel)
        write_graph(graphs.encoder, work / encoder_name(key), info)
        write_graph(graphs.decoder, work / decoder_name(key), info)
        vaes[key] = {**dataclasses.asdict(graphs.config), "scale_factor": BY_KEY[key].scale}
        del graphs

    step(f"building and writing {DENOISER_FILE}")
    int8 = write_denoiser(
        work, lambda data: build_copgen_denoiser(state, config, precision, external_data=data, cancel=cancel),
        info, with_int8,
    )
    return {**info, "denoiser": dataclasses.asdict(config), "vaes": vaes, **int8}


def essentials(options):
    return {
        "name": LABEL,
        "version": FORMAT_VERSION,
        "modalities": list(MODALITIES),
        "latent_shapes": {key: list(BY_KEY[key].latent_shape) for key in MODALITIES},
        "num_heads": options["num_heads"],
        "precision": options["precision"],
    }
