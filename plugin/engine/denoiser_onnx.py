"""The Triffuser denoiser (a U-ViT over all modalities at once) as an ONNX graph.

Inputs `latents` float32 [B, M, C, S, S] and `timesteps` float32 [B, M]; output `noise`, the
noise prediction, float32 [B, M, C, S, S]. The token sequence is M time tokens, then the
M x (S/p)^2 patch tokens, both in modality order, exactly as the official forward builds it.
"""

import math

import numpy as np

from .onnx_graph import GraphBuilder

MAX_PERIOD = 10000


def build_denoiser(state, config, precision="fp32", external_data=None, cancel=None):
    """Builds the graph for a state dict already checked by infer_denoiser_config.

    external_data: a new file to stream the weights into (save the graph beside it);
    None keeps them inside the returned ModelProto.
    """
    with GraphBuilder("copgen_beta_denoiser", precision, external_data, cancel) as builder:
        _build(builder, state, config)
    return builder.model()


def _build(builder, state, config):
    m, c, s = config.num_modalities, config.in_chans, config.img_size
    latents = builder.input("latents", ["batch", m, c, s, s])
    timesteps = builder.input("timesteps", ["batch", m])

    x = builder.op(
        "Concat",
        time_tokens(builder, timesteps, config),
        _patch_tokens(builder, state, latents, config),
        axis=1,
    )
    x = transformer(builder, state, x, config)
    builder.output(_unpatchify(builder, state, x, config), "noise", ["batch", m, c, s, s])


def transformer(builder, state, x, config):
    """Everything between the tokens and the prediction heads, shared by both families:
    pos_embed, the in-blocks, the mid-block, the out-blocks taking the in-blocks' outputs
    as long skips (last in first), then the final LayerNorm.

    config: any object with embed_dim, num_in_blocks and num_heads.
    """
    x = builder.op("Add", x, builder.weight("pos_embed", state["pos_embed"]))
    skips = []
    for i in range(config.num_in_blocks):
        x = _block(builder, state, x, f"in_blocks.{i}", config)
        skips.append(x)
    x = _block(builder, state, x, "mid_block", config)
    for i in range(config.num_in_blocks):
        x = _block(builder, state, x, f"out_blocks.{i}", config, skip=skips.pop())
    return _norm(builder, state, x, "norm")


def time_tokens(builder, timesteps, config):
    """[B, M] float timesteps -> [B, M, D] sinusoidal tokens: cosines first, then sines.

    Computed in float32 whatever the precision: t reaches 1000 and the arguments would
    lose their fractional part in fp16.
    """
    half = config.embed_dim // 2
    freqs = np.exp(-math.log(MAX_PERIOD) * np.arange(half, dtype=np.float32) / half)
    t = builder.op("Unsqueeze", timesteps, builder.shape_const(2))
    args = builder.op("Mul", t, builder.constant(freqs, "time_freqs"))
    tokens = builder.op("Concat", builder.op("Cos", args), builder.op("Sin", args), axis=-1)
    return builder.to_compute(tokens)


def _patch_tokens(builder, state, latents, config):
    """All modalities' patch embeddings as one grouped conv: [B, M * N, D]."""
    m, d = config.num_modalities, config.embed_dim
    weight = np.concatenate([state[f"patch_embeds.{i}.proj.weight"] for i in range(m)])
    bias = np.concatenate([state[f"patch_embeds.{i}.proj.bias"] for i in range(m)])
    x = builder.op(
        "Reshape",
        builder.to_compute(latents),
        builder.shape_const(0, m * config.in_chans, config.img_size, config.img_size),
    )
    x = builder.conv(
        x, weight, bias, "patch_embeds", stride=config.patch_size, pads=[0, 0, 0, 0], group=m
    )  # [B, M * D, g, g]
    x = builder.op("Reshape", x, builder.shape_const(0, m, d, config.num_patches))
    x = builder.op("Transpose", x, perm=[0, 1, 3, 2])
    return builder.op("Reshape", x, builder.shape_const(0, m * config.num_patches, d))


def _linear(builder, state, x, name):
    return builder.linear(x, state[f"{name}.weight"], state[f"{name}.bias"], name)


def _norm(builder, state, x, name):
    return builder.layer_norm(x, state[f"{name}.weight"], state[f"{name}.bias"], name)


def _block(builder, state, x, prefix, config, skip=None):
    """Post-norm transformer block; out blocks first merge their skip through skip_linear."""
    if skip is not None:
        x = builder.op("Concat", x, skip, axis=-1)
        x = _linear(builder, state, x, f"{prefix}.skip_linear")
        x = _norm(builder, state, x, f"{prefix}.norm1")
    x = builder.op("Add", x, _attention(builder, state, x, f"{prefix}.attn", config))
    x = _norm(builder, state, x, f"{prefix}.norm2")
    hidden = builder.gelu(_linear(builder, state, x, f"{prefix}.mlp.fc1"))
    x = builder.op("Add", x, _linear(builder, state, hidden, f"{prefix}.mlp.fc2"))
    return _norm(builder, state, x, f"{prefix}.norm3")


def _attention(builder, state, x, prefix, config):
    """Multi-head self-attention: one MatMul for q, k and v, then the fused attention kernel.

    qkv's output features are ordered (q|k|v, head, dim), the layout the kernel expects of
    each of q, k and v.
    """
    d, heads = config.embed_dim, config.num_heads
    qkv = builder.linear(x, state[f"{prefix}.qkv.weight"], None, f"{prefix}.qkv")
    q, k, v = builder.op("Split", qkv, builder.shape_const(d, d, d), axis=-1, outputs=3)
    out = builder.multi_head_attention(q, k, v, heads, scale=(d // heads) ** -0.5)
    return _linear(builder, state, out, f"{prefix}.proj")


def _unpatchify(builder, state, x, config):
    """Patch tokens -> [B, M, C, S, S]; a token's features are ordered (p1, p2, channel)."""
    m, d, p, c, g = (
        config.num_modalities,
        config.embed_dim,
        config.patch_size,
        config.in_chans,
        config.grid,
    )
    tokens = builder.op(
        "Slice",
        x,
        builder.shape_const(m),
        builder.shape_const(config.num_tokens),
        builder.shape_const(1),
    )
    tokens = builder.op("Reshape", tokens, builder.shape_const(0, m, config.num_patches, d))
    # one batched MatMul applies every modality's decoder_preds: [B, M, N, D] @ [M, D, P]
    weight = np.stack([state[f"decoder_preds.{i}.weight"].T for i in range(m)])
    bias = np.stack([state[f"decoder_preds.{i}.bias"][None, :] for i in range(m)])
    y = builder.op("MatMul", tokens, builder.weight("decoder_preds.weight", weight))
    y = builder.op("Add", y, builder.weight("decoder_preds.bias", bias))
    y = builder.op("Reshape", y, builder.shape_const(0, m, g, g, p, p, c))
    y = builder.op("Transpose", y, perm=[0, 1, 6, 2, 4, 3, 5])  # B M C (g p1) (g p2)
    return builder.op("Reshape", y, builder.shape_const(0, m, c, config.img_size, config.img_size))
