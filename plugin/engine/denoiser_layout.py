"""The denoiser's configuration, read from the weight shapes of an official checkpoint.

The official Triffuser state dict holds `pos_embed`, one `patch_embeds.{i}.proj` conv and one
`decoder_preds.{i}` linear per modality, `in_blocks.*`, `mid_block`, `out_blocks.*` (the out
blocks add `skip_linear` and `norm1`) and the final `norm`. Everything inference needs follows
from the shapes, except the number of attention heads, which the caller supplies.
"""

import math
import re
from dataclasses import dataclass

from .errors import CheckpointError, InputError


@dataclass(frozen=True)
class BodyConfig:
    """The U-ViT body both families share (what the shared transformer graph code reads)."""

    embed_dim: int
    num_in_blocks: int  # in_blocks == out_blocks; the official `depth` is twice this
    mlp_hidden: int
    num_heads: int

    @property
    def depth(self):
        return 2 * self.num_in_blocks


@dataclass(frozen=True)
class DenoiserConfig(BodyConfig):
    """COP-GEN-Beta's Triffuser: every modality a square latent of the same shape."""

    patch_size: int
    in_chans: int
    img_size: int  # latent side length
    num_modalities: int

    @property
    def grid(self):
        return self.img_size // self.patch_size

    @property
    def num_patches(self):
        return self.grid * self.grid

    @property
    def num_tokens(self):
        return self.num_modalities * (1 + self.num_patches)

    @property
    def patch_dim(self):
        return self.patch_size * self.patch_size * self.in_chans


def _shape(state, key, source):
    if key not in state:
        raise CheckpointError(
            f"{source}: missing key {key!r}; is this a COP-GEN-Beta denoiser checkpoint?"
        )
    return tuple(state[key].shape)


def _count_indexed(state, pattern):
    indices = {int(m.group(1)) for key in state if (m := re.match(pattern, key))}
    return max(indices) + 1 if indices else 0


def infer_denoiser_config(state, source, num_heads=16):
    """Reads a DenoiserConfig from weight shapes, then checks every key against it.

    Raises CheckpointError naming `source` and the first missing, misshapen or unexpected key,
    and InputError when `num_heads` does not divide the embedding width.
    """
    _, num_tokens, embed_dim = _shape(state, "pos_embed", source)
    _, in_chans, patch_size, _ = _shape(state, "patch_embeds.0.proj.weight", source)
    num_modalities = _count_indexed(state, r"patch_embeds\.(\d+)\.")
    num_patches, remainder = divmod(num_tokens - num_modalities, num_modalities)
    grid = math.isqrt(max(num_patches, 0))
    if remainder or num_patches <= 0 or grid * grid != num_patches:
        raise CheckpointError(
            f"{source}: 'pos_embed' holds {num_tokens} tokens, which is not "
            f"{num_modalities} time tokens plus {num_modalities} square patch grids"
        )
    mlp_hidden = _shape(state, "mid_block.mlp.fc1.weight", source)[0]
    check_heads(num_heads, embed_dim, source)
    config = DenoiserConfig(
        embed_dim=embed_dim,
        num_in_blocks=_count_indexed(state, r"in_blocks\.(\d+)\."),
        patch_size=patch_size,
        in_chans=in_chans,
        img_size=grid * patch_size,
        num_modalities=num_modalities,
        mlp_hidden=mlp_hidden,
        num_heads=num_heads,
    )
    validate_denoiser_state(state, config, source)
    return config


def block_shapes(prefix, config, skip):
    d, hidden = config.embed_dim, config.mlp_hidden
    shapes = {}
    if skip:
        shapes[f"{prefix}.skip_linear.weight"] = (d, 2 * d)
        shapes[f"{prefix}.skip_linear.bias"] = (d,)
        shapes[f"{prefix}.norm1.weight"] = (d,)
        shapes[f"{prefix}.norm1.bias"] = (d,)
    shapes.update(
        {
            f"{prefix}.attn.qkv.weight": (3 * d, d),
            f"{prefix}.attn.proj.weight": (d, d),
            f"{prefix}.attn.proj.bias": (d,),
            f"{prefix}.norm2.weight": (d,),
            f"{prefix}.norm2.bias": (d,),
            f"{prefix}.mlp.fc1.weight": (hidden, d),
            f"{prefix}.mlp.fc1.bias": (hidden,),
            f"{prefix}.mlp.fc2.weight": (d, hidden),
            f"{prefix}.mlp.fc2.bias": (d,),
            f"{prefix}.norm3.weight": (d,),
            f"{prefix}.norm3.bias": (d,),
        }
    )
    return shapes


def expected_shapes(config):
    """Every key of an official state dict with this config, in module order, with its shape."""
    d, p = config.embed_dim, config.patch_size
    shapes = {"pos_embed": (1, config.num_tokens, d)}
    for i in range(config.num_modalities):
        shapes[f"patch_embeds.{i}.proj.weight"] = (d, config.in_chans, p, p)
        shapes[f"patch_embeds.{i}.proj.bias"] = (d,)
    shapes.update(body_shapes(config))
    for i in range(config.num_modalities):
        shapes[f"decoder_preds.{i}.weight"] = (config.patch_dim, d)
        shapes[f"decoder_preds.{i}.bias"] = (config.patch_dim,)
    return shapes


def check_heads(num_heads, embed_dim, source):
    """InputError (field "heads") unless ``num_heads`` divides the embedding width: heads are
    not stored in the weights, so a wrong number is the user's option, named as such."""
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1 or embed_dim % num_heads:
        raise InputError(
            f"{num_heads} heads: must be a positive divisor of the embedding width {embed_dim} of {source}", "heads"
        )


def body_shapes(config):
    """The shapes of the U-ViT body both families share: in-blocks, mid-block, out-blocks and
    the final norm (``config`` has ``embed_dim``, ``num_in_blocks`` and ``mlp_hidden``)."""
    d = config.embed_dim
    shapes = {}
    for i in range(config.num_in_blocks):
        shapes.update(block_shapes(f"in_blocks.{i}", config, skip=False))
    shapes.update(block_shapes("mid_block", config, skip=False))
    for i in range(config.num_in_blocks):
        shapes.update(block_shapes(f"out_blocks.{i}", config, skip=True))
    shapes["norm.weight"] = (d,)
    shapes["norm.bias"] = (d,)
    return shapes


def check_state(state, expected, source, network):
    """Raises CheckpointError naming `source` and the first key of `state` missing from, shaped
    unlike, or unknown to `expected` ({key: shape}); `network` names what it should be."""
    for key, shape in expected.items():
        if key not in state:
            raise CheckpointError(f"{source}: missing key {key!r}")
        if tuple(state[key].shape) != shape:
            raise CheckpointError(
                f"{source}: key {key!r} has shape {tuple(state[key].shape)}, expected {shape}"
            )
    for key in state:
        if key not in expected:
            raise CheckpointError(f"{source}: unexpected key {key!r} (not a {network} weight)")


def validate_denoiser_state(state, config, source):
    """Raises CheckpointError naming `source` and the first key that does not fit `config`."""
    check_state(state, expected_shapes(config), source, "Triffuser")
