"""COP-GEN-Beta's part of a conversion: one denoiser (Triffuser) and one shared KL-f8 VAE."""

import dataclasses
from pathlib import Path

from ...checkpoint import check_finite, load_state_dict
from ...denoiser_layout import infer_denoiser_config
from ...denoiser_onnx import build_denoiser
from ...errors import InputError
from ...folder_writer import write_denoiser, write_graph
from .registry import MODALITIES, VAE_SCALE
from ...model_folder import DECODER_FILE, DENOISER_FILE, ENCODER_FILE
from ...vae_layout import infer_vae_config, to_ldm_layout, validate_vae
from ...vae_onnx import build_vae_decoder, build_vae_encoder
from . import LABEL

FORMAT_VERSION = 1  # of the converted folder; bump when graphs or model.json change meaning


def checkpoints(denoiser_path, vae_path=None, vae_dir=None):
    """{role: path} of the files a conversion reads; InputError for the wrong VAE option."""
    if vae_dir is not None or vae_path is None:
        raise InputError(
            f"{denoiser_path} is a {LABEL} denoiser: give its autoencoder as one file (--vae FILE), "
            "not a folder of VAEs", "vae",
        )
    return {"denoiser": Path(denoiser_path), "vae": Path(vae_path)}


def build_folder(work, state, files, options, step, with_int8, cancel=None):
    """Writes the graphs into ``work`` and returns model.json's family part."""
    precision, heads = options["precision"], options["num_heads"]
    config = infer_denoiser_config(state, files["denoiser"], num_heads=heads)
    vae_state = to_ldm_layout(load_state_dict(files["vae"], cancel), files["vae"])
    # NaN or Inf weights would only show as black outputs much later, naming no file
    check_finite(state, files["denoiser"], cancel)
    check_finite(vae_state, files["vae"], cancel)
    vae_config = infer_vae_config(vae_state, files["vae"])
    validate_vae(vae_state, vae_config, files["vae"])
    info = essentials(config, options)

    step(f"building and writing {ENCODER_FILE} and {DECODER_FILE}")
    write_graph(build_vae_encoder(vae_state, vae_config, precision, cancel=cancel), work / ENCODER_FILE, info)
    write_graph(build_vae_decoder(vae_state, vae_config, precision, cancel=cancel), work / DECODER_FILE, info)
    del vae_state

    step(f"building and writing {DENOISER_FILE}")
    int8 = write_denoiser(work, lambda data: build_denoiser(state, config, precision, data, cancel), info, with_int8)
    return {
        **info,
        "denoiser": dataclasses.asdict(config),
        "vae": dataclasses.asdict(vae_config),
        **int8,
    }


def essentials(config, options):
    """What model.json and every graph's metadata say of the model."""
    return {
        "name": LABEL,
        "version": FORMAT_VERSION,
        "modalities": list(MODALITIES),
        "latent_shape": [config.in_chans, config.img_size, config.img_size],
        "scale_factor": VAE_SCALE,
        "num_heads": options["num_heads"],
        "precision": options["precision"],
    }
