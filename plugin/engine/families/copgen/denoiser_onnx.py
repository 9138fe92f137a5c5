"""The COP-GEN denoiser (``COPGEN``, a U-ViT over heterogeneous tokens) as an ONNX graph.

Inputs: one float32 [B, C, h, w] latent per modality, named by its official key, with the
registry's latent_shape (scalars [B, 1, 1, 3]), and ``timesteps`` float32 [B, 12] in network
order. Outputs: ``noise.<key>``, the noise prediction of each modality, of its input's shape.

The token sequence is the 12 time tokens, then each modality's patch tokens, both in network
order (12 + 822 = 834). The transformer body between tokens and heads is Beta's, shared with
``plugin.engine.denoiser_onnx``; only the per-modality embeddings and heads differ.
"""

from ...denoiser_onnx import time_tokens, transformer
from ...onnx_graph import GraphBuilder
from .registry import LATENT_CHANNELS, PATCH_SIZE

TIMESTEPS = "timesteps"
NOISE_PREFIX = "noise."


def output_name(key):
    """The graph output holding the noise prediction of modality `key`."""
    return NOISE_PREFIX + key


def build_copgen_denoiser(state, config, precision="fp32", external_data=None, cancel=None):
    """Builds the graph for a state dict already checked by infer_copgen_config.

    external_data: a new file to stream the weights into (save the graph beside it, as
    Beta's converter does); None keeps them inside the returned ModelProto.
    """
    with GraphBuilder("copgen_denoiser", precision, external_data, cancel) as builder:
        _build(builder, state, config)
    return builder.model()


def _build(builder, state, config):
    modalities = config.modalities
    latents = [builder.input(m.key, ["batch", *m.latent_shape]) for m in modalities]
    timesteps = builder.input(TIMESTEPS, ["batch", len(modalities)])

    tokens = [time_tokens(builder, timesteps, config)]
    tokens += [_patch_tokens(builder, state, x, m) for x, m in zip(latents, modalities)]
    x = transformer(builder, state, builder.op("Concat", *tokens, axis=1), config)

    # drop the time tokens and cut the rest into each modality's tokens
    sizes = [len(modalities)] + [m.tokens for m in modalities]
    parts = builder.op(
        "Split", x, builder.shape_const(*sizes), axis=1, outputs=len(sizes)
    )
    for part, m in zip(parts[1:], modalities):
        noise = _unpatchify(builder, state, part, m)
        builder.output(noise, output_name(m.key), ["batch", *m.latent_shape])


def _patch_tokens(builder, state, latent, modality):
    """[B, C, h, w] -> [B, N, D] row-major tokens: a stride-p conv for images (p = 2), a 1x1
    conv over the three values for scalars (token j = w * v_j + b)."""
    name = f"patch_embeds.{modality.index}.proj"
    weight = state[f"{name}.weight"]
    x = builder.conv(
        builder.to_compute(latent),
        weight,
        state[f"{name}.bias"],
        f"patch_embeds.{modality.index}",
        stride=weight.shape[-1],
        pads=[0, 0, 0, 0],
    )  # [B, D, h/p, w/p]
    x = builder.op("Reshape", x, builder.shape_const(0, weight.shape[0], -1))
    return builder.op("Transpose", x, perm=[0, 2, 1])


def _unpatchify(builder, state, tokens, modality):
    """[B, N, D] -> the modality's latent [B, C, h, w] through its decoder_preds head.

    Image token (i, j)'s 32 features are ordered (p1, p2, channel), channel fastest, and fill
    pixels (c, 2i + p1, 2j + p2); scalar token j becomes element [0, 0, j]."""
    name = f"decoder_preds.{modality.index}"
    y = builder.linear(tokens, state[f"{name}.weight"], state[f"{name}.bias"], name)
    c, h, w = modality.latent_shape
    if modality.kind == "scalar":
        return builder.op("Reshape", y, builder.shape_const(0, c, h, w))
    p = PATCH_SIZE
    y = builder.op(
        "Reshape", y, builder.shape_const(0, h // p, w // p, p, p, LATENT_CHANNELS)
    )
    y = builder.op("Transpose", y, perm=[0, 5, 1, 3, 2, 4])  # B C (h p1) (w p2)
    return builder.op("Reshape", y, builder.shape_const(0, c, h, w))
