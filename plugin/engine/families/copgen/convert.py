"""COP-GEN's part of a conversion: the denoiser and one VAE per image modality."""

import dataclasses
from pathlib import Path

from ...checkpoint import check_finite, load_state_dict
from ...errors import CheckpointError, InputError
from ...model_folder import DENOISER_FILE
from ...folder_writer import write_denoiser, write_graph
from ...vae_layout import infer_vae_config, to_ldm_layout, validate_vae
from ...vae_onnx import build_vae_decoder, build_vae_encoder
from . import LABEL
from .denoiser_layout import infer_copgen_config
from .denoiser_onnx import build_copgen_denoiser
from .files import decoder_name, encoder_name
from .registry import BY_KEY, IMAGE_MODALITIES, LATENT_CHANNELS, MODALITIES

FORMAT_VERSION = 1
VAE_FILE = "model-50-ema.pth"  # inside each official copgen-vaes folder


def vae_role(key):
    """The sources / known_sha256 role of a modality's VAE checkpoint."""
    return f"vae.{key}"


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


def _read_vae(key, path, cancel):
    """A modality's VAE state and config, checked to be that modality's VAE."""
    state = to_ldm_layout(load_state_dict(path, cancel), path)
    check_finite(state, path, cancel)
    config = infer_vae_config(state, path)
    validate_vae(state, config, path)
    record = BY_KEY[key]
    if config.embed_dim != LATENT_CHANNELS:
        raise CheckpointError(
            f"{path}: a VAE with {config.embed_dim} latent channels; {LABEL} VAEs have "
            f"{LATENT_CHANNELS} (is this COP-GEN-Beta's autoencoder?)"
        )
    if config.in_channels != record.channels or config.out_ch != record.channels:
        raise CheckpointError(
            f"{path}: a VAE for {config.in_channels} input channels; {key} has {record.channels} "
            "(the VAE of another modality?)"
        )
    return state, config


def build_folder(work, state, files, options, step, with_int8, cancel=None):
    """Writes the graphs into ``work`` and returns model.json's family part."""
    precision, heads = options["precision"], options["num_heads"]
    config = infer_copgen_config(state, files["denoiser"], num_heads=heads)
    check_finite(state, files["denoiser"], cancel)
    info = essentials(options)

    step(f"building and writing the {len(IMAGE_MODALITIES)} VAEs")
    vaes = {}
    for key in IMAGE_MODALITIES:
        vae_state, vae_config = _read_vae(key, files[vae_role(key)], cancel)
        scale = BY_KEY[key].scale
        write_graph(build_vae_encoder(vae_state, vae_config, precision, cancel=cancel),
                    work / encoder_name(key), info)
        write_graph(build_vae_decoder(vae_state, vae_config, precision, scale_factor=scale, cancel=cancel),
                    work / decoder_name(key), info)
        vaes[key] = {**dataclasses.asdict(vae_config), "scale_factor": scale}
        del vae_state

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
