"""Which family a denoiser checkpoint belongs to, read from its weight names and shapes."""

from ..errors import CheckpointError
from . import BETA, COPGEN


def recognise_denoiser(state, path):
    """The family word of a denoiser state dict; one CheckpointError line naming ``path``
    when it is neither family's denoiser (a VAE given as the denoiser, say)."""
    from .beta.convert import looks_like as looks_like_beta
    from .copgen.denoiser_layout import looks_like_copgen

    if looks_like_copgen(state):
        return COPGEN
    if looks_like_beta(state):
        return BETA
    if any(key.startswith(("encoder.", "decoder.")) for key in state):
        raise CheckpointError(f"{path}: this is an autoencoder (VAE) checkpoint, not a denoiser")
    raise CheckpointError(
        f"{path}: not a COP-GEN-Beta or COP-GEN denoiser checkpoint (unknown layout: no "
        "'pos_embed' and 'patch_embeds.*' weights of either model)"
    )
