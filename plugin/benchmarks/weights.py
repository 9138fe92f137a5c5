"""Random full-size checkpoints in the official layouts, for benchmarks without the real weights.

The COP-GEN-Beta denoiser (embed 1024, 10 in-blocks + mid + 10 out-blocks, 4 modalities,
~287 M parameters) and the Stable Diffusion KL-f8 VAE (ch 128, ch_mult 1,2,4,4, 2 res
blocks), written as safetensors files (which the engine's checkpoint reader takes like the
official .pth files). Random weights give real timings and memory, never real images.
"""

import json
import struct
from pathlib import Path

import numpy as np

from ..engine.atomic import atomic_path
from ..engine.denoiser_layout import DenoiserConfig
from ..engine.denoiser_layout import expected_shapes as denoiser_shapes
from ..engine.vae_layout import VaeConfig
from ..engine.vae_layout import expected_shapes as vae_shapes

DENOISER = DenoiserConfig(
    embed_dim=1024, num_in_blocks=10, patch_size=2, in_chans=4, img_size=32,
    num_modalities=4, mlp_hidden=4096, num_heads=16,
)
VAE = VaeConfig(
    ch=128, ch_mult=(1, 2, 4, 4), num_res_blocks=2, z_channels=4, embed_dim=4,
    in_channels=3, out_ch=3, has_mid_attn=True,
)
SAFETENSORS_DTYPES = {
    np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("float64"): "F64",
    np.dtype("int64"): "I64", np.dtype("int32"): "I32", np.dtype("int16"): "I16",
    np.dtype("int8"): "I8", np.dtype("uint64"): "U64", np.dtype("uint32"): "U32",
    np.dtype("uint16"): "U16", np.dtype("uint8"): "U8", np.dtype("bool"): "BOOL",
}


def random_state(shapes, seed):
    """Small random weights; norm scales near 1 so activations stay in range."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in shapes.items():
        values = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
        if "norm" in key and key.endswith(".weight"):
            values += np.float32(1.0)
        state[key] = values
    return state


def fullsize_checkpoints(folder):
    """(denoiser, vae) checkpoint paths in ``folder``, written once and reused later."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "denoiser_fullsize.safetensors", folder / "vae_fullsize.safetensors"
    for path, shapes, seed in zip(paths, (denoiser_shapes(DENOISER), vae_shapes(VAE)), (0, 1)):
        if not path.exists():
            save_safetensors(random_state(shapes, seed), path)
    return paths


def save_safetensors(state, path):
    """Write ``{name: array}`` as a safetensors file (little-endian, C order), atomically."""
    arrays = {name: _little_endian(value) for name, value in state.items()}
    header, offset = {}, 0
    for name, array in arrays.items():
        if array.dtype not in SAFETENSORS_DTYPES:
            raise ValueError(f"{name}: dtype {array.dtype} has no safetensors type")
        header[name] = {
            "dtype": SAFETENSORS_DTYPES[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(struct.pack("<Q", len(text)))
            handle.write(text)
            for array in arrays.values():
                handle.write(array.tobytes())


def _little_endian(value):
    array = np.asarray(value, order="C")
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and not np.little_endian):
        array = array.astype(array.dtype.newbyteorder("<"))
    return array
