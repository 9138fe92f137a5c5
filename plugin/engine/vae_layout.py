"""The KL autoencoder's weights in the latent-diffusion ("ldm") key layout.

The official code loads the VAE in the latent-diffusion layout (``encoder.down.0.block.0...``).
The same network is published by diffusers (``encoder.down_blocks.0.resnets.0...``), so
:func:`to_ldm_layout` renames diffusers keys, reshapes its linear attention weights to 1x1
convolutions and reverses the decoder's level order. :class:`VaeConfig` describes the network
as read from the weight shapes, and :func:`validate_vae` checks a state dict against it.
"""

import re
from dataclasses import dataclass

from .errors import CheckpointError

# Training-only weights (the LPIPS / discriminator loss) that ldm checkpoints may carry.
_TRAINING_PREFIX = "loss."

_PARAM = r"(weight|bias)"
_RESNET_PARTS = ("norm1", "conv1", "norm2", "conv2", "nin_shortcut")
_ATTN_PARTS = ("norm", "q", "k", "v", "proj_out")

_LDM_KEY = re.compile(
    r"(quant_conv|post_quant_conv)\.%(p)s"
    r"|(encoder|decoder)\.(conv_in|conv_out|norm_out)\.%(p)s"
    r"|(encoder|decoder)\.mid\.block_[12]\.(%(res)s)\.%(p)s"
    r"|(encoder|decoder)\.mid\.attn_1\.(%(attn)s)\.%(p)s"
    r"|encoder\.down\.\d+\.(block\.\d+\.(%(res)s)|attn\.\d+\.(%(attn)s)|downsample\.conv)\.%(p)s"
    r"|decoder\.up\.\d+\.(block\.\d+\.(%(res)s)|attn\.\d+\.(%(attn)s)|upsample\.conv)\.%(p)s"
    % {"p": _PARAM, "res": "|".join(_RESNET_PARTS), "attn": "|".join(_ATTN_PARTS)}
)

# diffusers names -> ldm names inside one resnet or one attention block.
_DIFFUSERS_RESNET = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2",
                     "conv_shortcut": "nin_shortcut"}
_DIFFUSERS_ATTN = {"group_norm": "norm", "to_q": "q", "query": "q", "to_k": "k", "key": "k",
                   "to_v": "v", "value": "v", "to_out.0": "proj_out", "proj_attn": "proj_out"}
_DIFFUSERS_TOP = {"conv_in": "conv_in", "conv_out": "conv_out", "conv_norm_out": "norm_out"}

_DIFFUSERS_KEY = re.compile(
    r"(?P<top>quant_conv|post_quant_conv)\.(?P<param>weight|bias)"
    r"|(?P<part>encoder|decoder)\.(?:"
    r"(?P<outer>conv_in|conv_out|conv_norm_out)"
    r"|mid_block\.resnets\.(?P<mid_res>[01])\.(?P<mid_res_name>\w+)"
    r"|mid_block\.attentions\.0\.(?P<mid_attn_name>to_out\.0|\w+)"
    r"|(?:down|up)_blocks\.(?P<level>\d+)\.(?:"
    r"resnets\.(?P<block>\d+)\.(?P<res_name>\w+)"
    r"|(?P<sampler>downsamplers|upsamplers)\.0\.conv))"
    r"\.(?P<param2>weight|bias)"
)


@dataclass(frozen=True)
class VaeConfig:
    """Shape of a KL autoencoder (the ldm ``ddconfig`` plus the latent embedding width)."""

    ch: int
    ch_mult: tuple
    num_res_blocks: int
    z_channels: int
    embed_dim: int
    in_channels: int
    out_ch: int
    has_mid_attn: bool
    attn_levels: tuple = ()

    @property
    def downsample_factor(self):
        return 2 ** (len(self.ch_mult) - 1)


def to_ldm_layout(state, source="VAE checkpoint"):
    """Return ``state`` in the latent-diffusion layout (ldm input is returned as it is,
    less training-only ``loss.*`` weights). Raises :class:`CheckpointError` naming ``source``
    and the first key that belongs to neither layout."""
    keys = [key for key in state if not key.startswith(_TRAINING_PREFIX)]
    if not keys:
        raise CheckpointError(f"{source}: no autoencoder weights found")
    if any(".down_blocks." in key or ".up_blocks." in key or ".mid_block." in key for key in keys):
        return _from_diffusers(state, keys, source)
    for key in keys:
        if not _LDM_KEY.fullmatch(key):
            raise CheckpointError(f"{source}: not an autoencoder in a known layout (unknown key {key})")
    return {key: state[key] for key in keys}


def _from_diffusers(state, keys, source):
    up_levels = {int(m.group(1)) for key in keys if (m := re.match(r"decoder\.up_blocks\.(\d+)\.", key))}
    last_up = max(up_levels, default=0)
    converted = {}
    for key in keys:
        new_key = _diffusers_to_ldm_key(key, last_up)
        if new_key is None:
            raise CheckpointError(f"{source}: not an autoencoder in a known layout (unknown key {key})")
        value = state[key]
        if ".mid.attn_1." in new_key and new_key.endswith(".weight") and value.ndim == 2:
            value = value.reshape(value.shape + (1, 1))  # linear -> 1x1 convolution
        converted[new_key] = value
    return converted


def _diffusers_to_ldm_key(key, last_up):
    match = _DIFFUSERS_KEY.fullmatch(key)
    if match is None:
        return None
    found = match.groupdict()
    if found["top"]:
        return f"{found['top']}.{found['param']}"
    part, param = found["part"], found["param2"]
    if found["outer"]:
        return f"{part}.{_DIFFUSERS_TOP[found['outer']]}.{param}"
    if found["mid_res"] is not None:
        name = _DIFFUSERS_RESNET.get(found["mid_res_name"])
        return name and f"{part}.mid.block_{int(found['mid_res']) + 1}.{name}.{param}"
    if found["mid_attn_name"] is not None:
        name = _DIFFUSERS_ATTN.get(found["mid_attn_name"])
        return name and f"{part}.mid.attn_1.{name}.{param}"
    level = int(found["level"])
    encoder = part == "encoder"
    if encoder != (".down_blocks." in key):
        return None  # down blocks belong to the encoder, up blocks to the decoder
    if encoder:
        prefix = f"encoder.down.{level}"
    else:
        prefix = f"decoder.up.{last_up - level}"  # diffusers counts decoder levels from the bottom
    if found["sampler"]:
        return f"{prefix}.{'downsample' if encoder else 'upsample'}.conv.{param}"
    name = _DIFFUSERS_RESNET.get(found["res_name"])
    return name and f"{prefix}.block.{found['block']}.{name}.{param}"


def infer_vae_config(state, source="VAE checkpoint"):
    """Read a :class:`VaeConfig` from the shapes of an ldm-layout state dict."""

    def shape(key):
        if key not in state:
            raise CheckpointError(f"{source}: missing autoencoder weight {key}")
        return tuple(state[key].shape)

    ch, in_channels = shape("encoder.conv_in.weight")[:2]
    # Read from the decoder, which has num_res_blocks + 1 blocks per level: an encoder with
    # none (COP-GEN's small VAEs may) has no block, nor a last level, to read them from.
    levels = _indices(state, r"decoder\.up\.(\d+)\.")
    if not levels:
        raise CheckpointError(f"{source}: missing autoencoder weights decoder.up.0.*")
    ch_mult = tuple(shape(f"decoder.up.{i}.block.0.conv2.weight")[0] // ch for i in range(max(levels) + 1))
    embed_dim = shape("post_quant_conv.weight")[1]
    return VaeConfig(
        ch=ch,
        ch_mult=ch_mult,
        num_res_blocks=len(_indices(state, r"decoder\.up\.0\.block\.(\d+)\.")) - 1,
        z_channels=shape("decoder.conv_in.weight")[1],
        embed_dim=embed_dim,
        in_channels=in_channels,
        out_ch=shape("decoder.conv_out.weight")[0],
        has_mid_attn="encoder.mid.attn_1.q.weight" in state,
        attn_levels=tuple(sorted(_indices(state, r"encoder\.down\.(\d+)\.attn\."))),
    )


def validate_vae(state, config, source="VAE checkpoint"):
    """Check that ``state`` holds exactly the weights ``config`` needs, with their shapes.

    Raises :class:`CheckpointError` naming the first missing, misshapen or unexpected key."""
    expected = expected_shapes(config)
    for key, want in expected.items():
        if key not in state:
            raise CheckpointError(f"{source}: missing autoencoder weight {key}")
        got = tuple(state[key].shape)
        if got != want:
            raise CheckpointError(f"{source}: autoencoder weight {key} has shape {got}, expected {want}")
    for key in state:
        if key not in expected:
            raise CheckpointError(f"{source}: unexpected autoencoder weight {key}")


def expected_shapes(config):
    """``{ldm key: shape}`` of every weight the autoencoder described by ``config`` has."""
    shapes = {}
    ch, mult, levels = config.ch, config.ch_mult, len(config.ch_mult)

    def conv(name, c_out, c_in, k):
        shapes[f"{name}.weight"] = (c_out, c_in, k, k)
        shapes[f"{name}.bias"] = (c_out,)

    def norm(name, c):
        shapes[f"{name}.weight"] = shapes[f"{name}.bias"] = (c,)

    def resnet(name, c_in, c_out):
        norm(f"{name}.norm1", c_in)
        conv(f"{name}.conv1", c_out, c_in, 3)
        norm(f"{name}.norm2", c_out)
        conv(f"{name}.conv2", c_out, c_out, 3)
        if c_in != c_out:
            conv(f"{name}.nin_shortcut", c_out, c_in, 1)

    def attention(name, c):
        norm(f"{name}.norm", c)
        for part in ("q", "k", "v", "proj_out"):
            conv(f"{name}.{part}", c, c, 1)

    def middle(part, c):
        resnet(f"{part}.mid.block_1", c, c)
        if config.has_mid_attn:
            attention(f"{part}.mid.attn_1", c)
        resnet(f"{part}.mid.block_2", c, c)

    conv("encoder.conv_in", ch, config.in_channels, 3)
    for level in range(levels):
        # as the reference: a level starts at the previous level's width, which only its
        # blocks change (with no blocks, the downsampling keeps that width)
        c_in = ch * (1, *mult)[level]
        c_out = ch * mult[level]
        for block in range(config.num_res_blocks):
            resnet(f"encoder.down.{level}.block.{block}", c_in, c_out)
            if level in config.attn_levels:
                attention(f"encoder.down.{level}.attn.{block}", c_out)
            c_in = c_out
        if level != levels - 1:
            conv(f"encoder.down.{level}.downsample.conv", c_in, c_in, 3)
    middle("encoder", c_in)
    norm("encoder.norm_out", c_in)
    conv("encoder.conv_out", 2 * config.z_channels, c_in, 3)  # mean and log-variance

    conv("quant_conv", 2 * config.embed_dim, 2 * config.z_channels, 1)
    conv("post_quant_conv", config.z_channels, config.embed_dim, 1)

    c_in = ch * mult[-1]
    conv("decoder.conv_in", c_in, config.z_channels, 3)
    middle("decoder", c_in)
    for level in reversed(range(levels)):
        c_out = ch * mult[level]
        for block in range(config.num_res_blocks + 1):
            resnet(f"decoder.up.{level}.block.{block}", c_in, c_out)
            if level in config.attn_levels:
                attention(f"decoder.up.{level}.attn.{block}", c_out)
            c_in = c_out
        if level != 0:
            conv(f"decoder.up.{level}.upsample.conv", c_in, c_in, 3)
    norm("decoder.norm_out", c_in)
    conv("decoder.conv_out", config.out_ch, c_in, 3)
    return shapes


def _indices(state, pattern):
    regex = re.compile(pattern)
    return {int(m.group(1)) for key in state if (m := regex.match(key))}
