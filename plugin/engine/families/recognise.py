"""Which family a denoiser checkpoint belongs to, read from its weight names and shapes."""

from ..errors import CheckpointError


def recognise_denoiser(state, path):
    """The family word of a denoiser state dict; one CheckpointError line naming ``path``
    when it is neither family's denoiser (a VAE given as the denoiser, say)."""
    from .copgen.denoiser_layout import denoiser_family

    if "pos_embed" not in state and any(key.startswith(("encoder.", "decoder.")) for key in state):
        raise CheckpointError(f"{path}: this is an autoencoder (VAE) checkpoint, not a denoiser")
    return denoiser_family(state, path)
