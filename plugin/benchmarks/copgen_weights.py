"""Random COP-GEN checkpoints in the official layouts, for benchmarks without the real weights.

The denoiser (``cop_gen_base``: embed 1024, depth 20, 16 heads, 286,986,562 parameters) as
``<folder>/denoiser.pth`` and one VAE per image modality (ch 128, ch_mult 1,2,4,4, 2 res blocks
in the encoder and 3 in the decoder, 8 latent channels) as ``<folder>/vaes/<official
folder>/model-50-ema.pth``, the layout ``convert --vae-dir`` reads. ``size="tiny"`` writes the
same layout at a few hundred kB, for a smoke test.

Weights are N(0, 1) / sqrt(fan_in) (norm scales 1, biases 0, pos_embed 0.02) so activations keep
unit size through the 21 blocks and the VAEs' convolutions; the timings and memory are real, the
outputs mean nothing. ``save`` writes one ``{name: array}`` file: the default writes safetensors
(which the converter reads whatever the name); benchmarks that also hand the file to
``torch.load`` pass a PyTorch zip writer (tests/checkpoint_write.py's ``save_pth``).
"""

from pathlib import Path

import numpy as np

from ..engine.families.copgen.denoiser_layout import BASE, CopgenDenoiserConfig
from ..engine.families.copgen.denoiser_layout import expected_shapes as denoiser_shapes
from ..engine.families.copgen.registry import BY_KEY, IMAGE_MODALITIES, LATENT_CHANNELS
from ..engine.vae_layout import VaeConfig
from ..engine.vae_layout import expected_shapes as vae_shapes
from .weights import save_safetensors

DENOISER_FILE = "denoiser.pth"
VAE_DIR = "vaes"
VAE_FILE = "model-50-ema.pth"  # the official copgen-vaes file name
SIZES = {
    "full": (BASE, dict(ch=128, ch_mult=(1, 2, 4, 4), num_res_blocks=2)),
    "tiny": (
        CopgenDenoiserConfig(embed_dim=32, num_in_blocks=1, mlp_hidden=64, num_heads=2),
        dict(ch=32, ch_mult=(1, 1, 1, 1), num_res_blocks=1),
    ),
}


def vae_config(key, size="full"):
    """The VaeConfig of modality ``key``'s VAE at ``size``."""
    channels = BY_KEY[key].channels
    return VaeConfig(
        **SIZES[size][1], z_channels=LATENT_CHANNELS, embed_dim=LATENT_CHANNELS,
        in_channels=channels, out_ch=channels, has_mid_attn=True,
    )


def scaled_random_state(shapes, seed):
    """{name: float32 array}: N(0, 1) / sqrt(fan_in) weights, unit norm scales, zero biases."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in shapes.items():
        leaf = name.rsplit(".", 1)[-1]
        parent = name.rsplit(".", 2)[-2] if name.count(".") else ""
        if name == "pos_embed":
            state[name] = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
        elif leaf == "bias":
            state[name] = np.zeros(shape, np.float32)
        elif "norm" in parent or len(shape) == 1:  # LayerNorm / GroupNorm scales
            state[name] = np.ones(shape, np.float32)
        else:
            fan_in = int(np.prod(shape[1:]))
            values = rng.standard_normal(shape, dtype=np.float32)
            values *= np.float32(1.0 / np.sqrt(fan_in))
            state[name] = values
    return state


def denoiser_parameters(size="full"):
    return sum(int(np.prod(shape)) for shape in denoiser_shapes(SIZES[size][0]).values())


def write_copgen_checkpoints(folder, save=save_safetensors, size="full", keys=IMAGE_MODALITIES):
    """(denoiser path, VAE folder) under ``folder``, each file written once and reused later.

    keys: the image modalities whose VAEs to write (the converter needs all ten)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    denoiser = folder / DENOISER_FILE
    if not denoiser.exists():
        save(scaled_random_state(denoiser_shapes(SIZES[size][0]), seed=0), denoiser)
    vae_dir = folder / VAE_DIR
    for number, key in enumerate(keys, start=1):
        path = vae_dir / BY_KEY[key].vae_folder / VAE_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            save(scaled_random_state(vae_shapes(vae_config(key, size)), seed=number), path)
    return denoiser, vae_dir
