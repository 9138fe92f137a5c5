"""The KL-f8 autoencoder (latent-diffusion layout) as two ONNX graphs.

`vae_encoder.onnx`: image float32 [B, 3, H, W] in [-1, 1] -> moments [B, 8, H/8, W/8]
(mean, then log-variance; quant_conv applied). `vae_decoder.onnx`: latents float32
[B, 4, h, w], already multiplied by the scale factor -> image [B, 3, 8h, 8w], nominally in
[-1, 1] and not clamped. Batch and spatial size are dynamic.
"""

import numpy as np

from .families.beta.registry import VAE_SCALE
from .onnx_graph import GraphBuilder

GROUPS = 32
EPS = 1e-6


def build_vae_encoder(state, config, precision="fp32", cancel=None):
    """Encoder graph for an ldm-layout state dict already checked by vae_layout.validate_vae."""
    builder = GraphBuilder("copgen_beta_vae_encoder", precision, cancel=cancel)
    image = builder.input("image", ["batch", config.in_channels, "height", "width"])
    h = _conv(builder, state, builder.to_compute(image), "encoder.conv_in")
    levels = len(config.ch_mult)
    for level in range(levels):
        for index in range(config.num_res_blocks):
            h = _resnet(builder, state, h, f"encoder.down.{level}.block.{index}")
            if level in config.attn_levels:
                h = _attention(builder, state, h, f"encoder.down.{level}.attn.{index}")
        if level != levels - 1:
            # stride-2 conv after zero padding one row/column at the bottom/right only
            name = f"encoder.down.{level}.downsample.conv"
            h = _conv(builder, state, h, name, stride=2, pads=[0, 0, 1, 1])
    h = _middle(builder, state, h, config, "encoder.mid")
    h = _conv(builder, state, _norm_silu(builder, state, h, "encoder.norm_out"), "encoder.conv_out")
    moments = _conv(builder, state, h, "quant_conv")
    channels = 2 * config.embed_dim
    builder.output(moments, "moments", ["batch", channels, "latent_height", "latent_width"])
    return builder.model()


def build_vae_decoder(state, config, precision="fp32", scale_factor=VAE_SCALE, cancel=None):
    """Decoder graph; it undoes the latent scale factor itself, as the reference decode does."""
    builder = GraphBuilder("copgen_beta_vae_decoder", precision, cancel=cancel)
    latents = builder.input("latents", ["batch", config.embed_dim, "latent_height", "latent_width"])
    z = builder.op(
        "Mul", builder.to_compute(latents), builder.scalar(1.0 / scale_factor, "inv_scale_factor")
    )
    h = _conv(builder, state, z, "post_quant_conv")
    h = _conv(builder, state, h, "decoder.conv_in")
    h = _middle(builder, state, h, config, "decoder.mid")
    for level in reversed(range(len(config.ch_mult))):
        for index in range(config.num_res_blocks + 1):
            h = _resnet(builder, state, h, f"decoder.up.{level}.block.{index}")
            if level in config.attn_levels:
                h = _attention(builder, state, h, f"decoder.up.{level}.attn.{index}")
        if level != 0:
            h = _upsample(builder, h)
            h = _conv(builder, state, h, f"decoder.up.{level}.upsample.conv")
    h = _conv(builder, state, _norm_silu(builder, state, h, "decoder.norm_out"), "decoder.conv_out")
    builder.output(h, "image", ["batch", config.out_ch, "height", "width"])
    return builder.model()


def _conv(builder, state, x, name, stride=1, pads=None):
    return builder.conv(x, state[f"{name}.weight"], state[f"{name}.bias"], name, stride, pads)


def _norm(builder, state, x, name):
    return builder.group_norm(
        x, state[f"{name}.weight"], state[f"{name}.bias"], name, groups=GROUPS, eps=EPS
    )


def _norm_silu(builder, state, x, name):
    return builder.silu(_norm(builder, state, x, name))


def _resnet(builder, state, x, prefix):
    h = _conv(builder, state, _norm_silu(builder, state, x, f"{prefix}.norm1"), f"{prefix}.conv1")
    h = _conv(builder, state, _norm_silu(builder, state, h, f"{prefix}.norm2"), f"{prefix}.conv2")
    if f"{prefix}.nin_shortcut.weight" in state:  # the block changes the channel count
        x = _conv(builder, state, x, f"{prefix}.nin_shortcut")
    return builder.op("Add", x, h)


def _middle(builder, state, x, config, prefix):
    h = _resnet(builder, state, x, f"{prefix}.block_1")
    if config.has_mid_attn:
        h = _attention(builder, state, h, f"{prefix}.attn_1")
    return _resnet(builder, state, h, f"{prefix}.block_2")


def _attention(builder, state, x, prefix):
    """Single-head self-attention over all pixels, q/k/v/proj_out being 1x1 convs."""
    channels = state[f"{prefix}.q.weight"].shape[0]
    # q, k and v as one conv, the 1/sqrt(C) score scale folded into q
    factors = {"q": np.float32(channels**-0.5), "k": np.float32(1), "v": np.float32(1)}
    weight = np.concatenate([state[f"{prefix}.{n}.weight"] * f for n, f in factors.items()])
    bias = np.concatenate([state[f"{prefix}.{n}.bias"] * f for n, f in factors.items()])
    h = _norm(builder, state, x, f"{prefix}.norm")
    qkv = builder.conv(h, weight, bias, f"{prefix}.qkv")
    qkv = builder.op("Reshape", qkv, builder.shape_const(0, 3 * channels, -1))  # [B, 3C, N]
    q, k, v = builder.op("Split", qkv, axis=1, outputs=3)  # each [B, C, N]
    q_t = builder.op("Transpose", q, perm=[0, 2, 1])
    v_t = builder.op("Transpose", v, perm=[0, 2, 1])
    out = builder.attention_core(q_t, k, v_t)  # [B, N, C]
    out = builder.op("Transpose", out, perm=[0, 2, 1])
    out = builder.op("Reshape", out, builder.op("Shape", x))  # back to [B, C, H, W]
    out = _conv(builder, state, out, f"{prefix}.proj_out")
    return builder.op("Add", x, out)


def _upsample(builder, x):
    """Nearest-neighbour x2, each output pixel copying input pixel floor(i / 2)."""
    return builder.op(
        "Resize",
        x,
        "",
        builder.constant(np.array([1, 1, 2, 2], np.float32), "scales"),
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )
