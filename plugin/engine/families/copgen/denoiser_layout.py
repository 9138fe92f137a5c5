"""The COP-GEN denoiser's configuration, read from the weight shapes of an official checkpoint.

The official ``COPGEN`` state dict has Beta's U-ViT body (``pos_embed``, ``in_blocks.*``,
``mid_block``, ``out_blocks.*``, ``norm``) but one patch embedding and one prediction head per
modality of its own shape: ``Conv2d(8, D, 2, 2)`` and ``Linear(D, 32)`` for the ten image
latents, ``Conv2d(1, D, 1)`` and ``Linear(D, 1)`` for the two scalar 3-vectors. The modalities
and their token counts come from the registry; the width, depth and MLP width from the shapes.
Heads are not stored: the caller supplies them.
"""

import re
from dataclasses import dataclass

from ...denoiser_layout import BodyConfig, body_shapes, check_heads, check_state
from ...errors import CheckpointError
from .. import BETA, COPGEN
from .registry import LATENT_CHANNELS, NUM_TOKENS, PATCH_SIZE, REGISTRY



@dataclass(frozen=True)
class CopgenDenoiserConfig(BodyConfig):
    """The shared U-ViT body, plus the modalities in network order."""

    modalities: tuple = REGISTRY

    @property
    def num_tokens(self):
        return len(self.modalities) + sum(m.tokens for m in self.modalities)


# cop_gen_base, the published checkpoint: 286,986,562 parameters
BASE = CopgenDenoiserConfig(embed_dim=1024, num_in_blocks=10, mlp_hidden=4096, num_heads=16)


def patch_shape(modality, embed_dim):
    """Shape of ``patch_embeds.i.proj.weight`` for one modality."""
    if modality.kind == "scalar":
        return (embed_dim, 1, 1, 1)
    return (embed_dim, LATENT_CHANNELS, PATCH_SIZE, PATCH_SIZE)


def head_features(modality):
    """Output width of ``decoder_preds.i``: one value per scalar token, a 2x2x8 patch per image
    token."""
    return 1 if modality.kind == "scalar" else PATCH_SIZE * PATCH_SIZE * LATENT_CHANNELS


def _count_indexed(state, pattern):
    indices = {int(m.group(1)) for key in state if (m := re.match(pattern, key))}
    return max(indices) + 1 if indices else 0


def _shape(state, key):
    value = state.get(key)
    return None if value is None else tuple(getattr(value, "shape", ()))


def looks_like_copgen(state):
    """True for a state dict shaped like COP-GEN's: twelve patch embeddings whose first and
    last (the scalars) are [D, 1, 1, 1], and a pos_embed of 834 tokens. Beta's Triffuser has
    identical [D, C, p, p] patch embeddings and M * (1 + N) tokens."""
    pos = _shape(state, "pos_embed")
    if pos is None or len(pos) != 3 or pos[:2] != (1, NUM_TOKENS):
        return False
    if _count_indexed(state, r"patch_embeds\.(\d+)\.") != len(REGISTRY):
        return False
    d = pos[2]
    return all(
        _shape(state, f"patch_embeds.{m.index}.proj.weight") == patch_shape(m, d)
        for m in REGISTRY
        if m.kind == "scalar"
    )


def _looks_like_beta(state):
    pos = _shape(state, "pos_embed")
    first = _shape(state, "patch_embeds.0.proj.weight")
    count = _count_indexed(state, r"patch_embeds\.(\d+)\.")
    if pos is None or first is None or len(pos) != 3 or len(first) != 4 or count < 1:
        return False
    same = all(_shape(state, f"patch_embeds.{i}.proj.weight") == first for i in range(count))
    return same and (pos[1] - count) % count == 0


def denoiser_family(state, source):
    """"cop-gen" or "cop-gen-beta" for a denoiser state dict, from its shapes alone.

    Raises CheckpointError naming `source` when it is neither (a VAE, another network)."""
    if looks_like_copgen(state):
        return COPGEN
    if _looks_like_beta(state):
        return BETA
    raise CheckpointError(
        f"{source}: not a COP-GEN or COP-GEN-Beta denoiser (no pos_embed of "
        f"{NUM_TOKENS} tokens with 12 patch embeddings, nor a Triffuser layout)"
    )


def infer_copgen_config(state, source, num_heads=16):
    """Reads a CopgenDenoiserConfig from weight shapes, then checks every key against it.

    Raises CheckpointError naming `source` and the first missing, misshapen or unexpected key
    (or saying the file is a Beta denoiser), and InputError when `num_heads` does not divide
    the embedding width.
    """
    if not looks_like_copgen(state):
        if _looks_like_beta(state):
            raise CheckpointError(
                f"{source}: a COP-GEN-Beta (Triffuser) denoiser, not a COP-GEN one"
            )
        raise CheckpointError(
            f"{source}: not a COP-GEN denoiser (expected 'pos_embed' [1, {NUM_TOKENS}, D] and "
            f"{len(REGISTRY)} patch embeddings, the scalars' [D, 1, 1, 1])"
        )
    embed_dim = _shape(state, "pos_embed")[2]
    fc1 = _shape(state, "mid_block.mlp.fc1.weight")
    if fc1 is None:
        raise CheckpointError(f"{source}: missing key 'mid_block.mlp.fc1.weight'")
    check_heads(num_heads, embed_dim, source)
    config = CopgenDenoiserConfig(
        embed_dim=embed_dim,
        num_in_blocks=_count_indexed(state, r"in_blocks\.(\d+)\."),
        mlp_hidden=fc1[0],
        num_heads=num_heads,
    )
    validate_copgen_state(state, config, source)
    return config


def expected_shapes(config):
    """Every key of an official COPGEN state dict with this config, in module order."""
    d = config.embed_dim
    shapes = {"pos_embed": (1, config.num_tokens, d)}
    for m in config.modalities:
        shapes[f"patch_embeds.{m.index}.proj.weight"] = patch_shape(m, d)
        shapes[f"patch_embeds.{m.index}.proj.bias"] = (d,)
    shapes.update(body_shapes(config))
    for m in config.modalities:
        shapes[f"decoder_preds.{m.index}.weight"] = (head_features(m), d)
        shapes[f"decoder_preds.{m.index}.bias"] = (head_features(m),)
    return shapes


def validate_copgen_state(state, config, source):
    """Raises CheckpointError naming `source` and the first key that does not fit `config`."""
    check_state(state, expected_shapes(config), source, "COP-GEN")
