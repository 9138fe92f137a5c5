"""COP-GEN's per-modality VAEs as ONNX graphs: Beta's KL autoencoder builders, checked
against the registry.

Each image modality has its own VAE (``copgen-vaes/<folder>/model-50-ema.pth``, ldm layout)
with the modality's channel count in and out, 8 latent channels and its own latent scale.
The encoder graph returns the unscaled moments [B, 16, H/8, W/8] (mean, then log-variance);
the decoder graph takes latents already multiplied by the modality's scale and divides it out
itself, so the denoiser's latents go in unchanged. No tanh, no clamp: the decoder's output is
in the model domain, to be post-processed into physical units.
"""

from dataclasses import dataclass

from ...checkpoint import check_finite
from ...errors import CheckpointError
from ...vae_layout import infer_vae_config, to_ldm_layout, validate_vae
from ...vae_onnx import build_vae_decoder, build_vae_encoder
from .registry import LATENT_CHANNELS


@dataclass(frozen=True)
class CopgenVaeGraphs:
    encoder: object  # onnx ModelProto: image [B, C, H, W] -> moments [B, 16, H/8, W/8]
    decoder: object  # onnx ModelProto: latents [B, 8, h, w] (scaled) -> image [B, C, 8h, 8w]
    config: object  # vae_layout.VaeConfig read from the weights


def read_copgen_vae(state, modality, source, cancel=None):
    """The ldm-layout state dict and its VaeConfig, checked against `modality`'s record.

    Raises CheckpointError naming `source` when a weight is missing or misshapen, or when the
    VAE is not the modality's (wrong channel count or latent width)."""
    state = to_ldm_layout(state, source)
    # NaN or Inf weights would only show as empty outputs much later, naming no file
    check_finite(state, source, cancel)
    config = infer_vae_config(state, source)
    validate_vae(state, config, source)
    if config.embed_dim != LATENT_CHANNELS:
        raise CheckpointError(
            f"{source}: a VAE with {config.embed_dim} latent channels; COP-GEN's have "
            f"{LATENT_CHANNELS} (is it COP-GEN-Beta's autoencoder?)"
        )
    if config.in_channels != modality.channels or config.out_ch != modality.channels:
        raise CheckpointError(
            f"{source}: a VAE of {config.in_channels} input and {config.out_ch} output "
            f"channels, but {modality.key} has {modality.channels}; is it that modality's VAE?"
        )
    return state, config


def build_copgen_vae(state, modality, source, precision="fp32", cancel=None):
    """Encoder and decoder graphs of `modality`'s VAE (a COP-GEN registry record), the decoder
    undoing the modality's latent scale."""
    state, config = read_copgen_vae(state, modality, source, cancel)
    encoder = build_vae_encoder(state, config, precision, cancel=cancel)
    decoder = build_vae_decoder(
        state, config, precision, scale_factor=modality.scale, cancel=cancel
    )
    return CopgenVaeGraphs(encoder, decoder, config)
