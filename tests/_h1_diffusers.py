"""Test helper: rewrite an ldm-layout VAE state dict the way diffusers names it.

Written independently of plugin.engine.vae_layout (by splitting names rather than by its
patterns) so the round trip in test_vae_layout checks one against the other.
"""

RESNET_NAMES = {"nin_shortcut": "conv_shortcut"}
ATTENTION_NAMES = {
    "new": {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"},
    "old": {"norm": "group_norm", "q": "query", "k": "key", "v": "value", "proj_out": "proj_attn"},
}


def ldm_to_diffusers(state, attention_style="new"):
    up_levels = 1 + max(int(key.split(".")[2]) for key in state if key.startswith("decoder.up."))
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        part, rest = parts[0], parts[1:]
        if part in ("quant_conv", "post_quant_conv") or rest[0] in ("conv_in", "conv_out"):
            new = parts
        elif rest[0] == "norm_out":
            new = [part, "conv_norm_out"] + rest[1:]
        elif rest[0] == "mid" and rest[1].startswith("block_"):
            index = int(rest[1][-1]) - 1
            new = [part, "mid_block", "resnets", str(index), RESNET_NAMES.get(rest[2], rest[2])] + rest[3:]
        elif rest[0] == "mid" and rest[1] == "attn_1":
            new = [part, "mid_block", "attentions", "0", ATTENTION_NAMES[attention_style][rest[2]]] + rest[3:]
            if value.ndim == 4:
                value = value.reshape(value.shape[:2])  # diffusers uses linear layers here
        elif rest[0] in ("down", "up"):
            level = int(rest[1])
            blocks = "down_blocks" if rest[0] == "down" else "up_blocks"
            if rest[0] == "up":
                level = up_levels - 1 - level
            if rest[2] == "block":
                new = [part, blocks, str(level), "resnets", rest[3], RESNET_NAMES.get(rest[4], rest[4])] + rest[5:]
            else:  # downsample / upsample
                samplers = "downsamplers" if rest[0] == "down" else "upsamplers"
                new = [part, blocks, str(level), samplers, "0"] + rest[3:]
        else:
            raise ValueError(f"no diffusers name for {key}")
        out[".".join(new)] = value
    return out
