"""A denoiser whose seams are known: the exact Bayes denoiser of a smooth Gaussian random field.

Random weights cannot show whether a window layout makes seams: their predictions have no
long-range structure, so even independent tiles look seamless through the canvas. This oracle
has it. Clean latents are taken to be a stationary Gaussian random field, independently per
channel, with the squared-exponential covariance k(d) = exp(-d^2 / (2 l^2)) of correlation
length ``l`` latents. For x_t = alpha x0 + sigma eps the posterior mean of the noise is linear:

    eps_hat = sigma (alpha^2 C + sigma^2 I)^-1 x_t

with C the covariance of the 32 x 32 window's cells, applied to each window alone, with no
context outside it, as the real network sees a window. C is separable (C1 kron C1), so with
C1 = U diag(lam) U^T the map is U (g * (U^T X U)) U^T with g = sigma / (alpha^2 lam lam^T +
sigma^2). The same map is written as an ONNX graph (:func:`write_oracle_folder`), with a decoder
without spatial context (a colour per latent, repeated over its 8 x 8 pixels) and an encoder
that averages 8 x 8 pixels, so a model folder runs end to end and only the denoiser's layout can
make seams.

Test and bench code: not shipped with the plugin.
"""

import json
from pathlib import Path

import numpy as np

from plugin.engine.families.beta.registry import MODALITIES
from plugin.engine.schedule import DiscreteVPSchedule

WINDOW = 32
TIME_TABLE = 1001  # network times 0..1000, rounded, in the ONNX graph


def covariance_1d(length_scale, size=WINDOW):
    offsets = np.arange(size)[:, None] - np.arange(size)[None, :]
    return np.exp(-0.5 * (offsets / length_scale) ** 2)


class GaussianFieldOracle:
    """``denoise(latents [N, 4, 4, 32, 32], timesteps [N, 4]) -> noise`` of the same shape
    (``size``: the window's side in latents; COP-GEN-Beta's 32 by default)."""

    def __init__(self, length_scale, size=WINDOW):
        self.length_scale = length_scale
        lam, self.basis = np.linalg.eigh(covariance_1d(length_scale, size))
        self.eigen = np.outer(np.clip(lam, 0, None), np.clip(lam, 0, None))  # of C1 kron C1
        self.schedule = DiscreteVPSchedule()
        self.calls = 0
        self.windows = 0

    def alpha_sigma(self, timesteps):
        t = np.clip(np.asarray(timesteps, np.float64) / 1000.0, 1e-3, 1.0)
        return self.schedule.marginal_alpha(t), self.schedule.marginal_std(t)

    def denoise(self, latents, timesteps):
        self.calls += 1
        self.windows += len(latents)
        alpha, sigma = self.alpha_sigma(timesteps)
        alpha, sigma = alpha[:, :, None, None, None], sigma[:, :, None, None, None]
        gain = sigma / (alpha ** 2 * self.eigen + sigma ** 2)
        u = self.basis
        spectral = u.T @ np.asarray(latents, np.float64) @ u
        return (u @ (gain * spectral) @ u.T).astype(np.float32)


class MultiResolutionOracle:
    """The oracle for COP-GEN's windows: ``denoise({key: [N, C, s, s]}, {key: [N]})``. Every image
    modality's window is denoised alone as a Gaussian field of the same physical correlation
    length (``length_units`` x its latents per 480 m unit), at its own resolution (24 latents at
    10 m, 12 at 20 m, 8 for the DEM, 4 at 60 m); scalars get no noise prediction (zeros)."""

    def __init__(self, length_units):
        from plugin.engine.families.copgen.canvas import latents_per_unit
        from plugin.engine.families.copgen.registry import REGISTRY

        self.fields = {
            record.key: GaussianFieldOracle(length_units * latents_per_unit(record.key), record.latent_shape[1])
            for record in REGISTRY if record.has_vae
        }
        self.windows = 0

    def denoise(self, latents, timesteps):
        self.windows += len(next(iter(latents.values())))
        noise = {}
        for key, value in latents.items():
            field = self.fields.get(key)
            if field is None:
                noise[key] = np.zeros_like(value)
                continue
            alpha, sigma = field.alpha_sigma(timesteps[key])
            alpha, sigma = alpha[:, None, None, None], sigma[:, None, None, None]
            gain = sigma / (alpha ** 2 * field.eigen + sigma ** 2)
            u = field.basis
            noise[key] = (u @ (gain * (u.T @ np.asarray(value, np.float64) @ u)) @ u.T).astype(np.float32)
        return noise


def _time_tables():
    schedule = DiscreteVPSchedule()
    t = np.maximum(np.arange(TIME_TABLE), 1) / 1000.0
    return (schedule.marginal_alpha(t) ** 2).astype(np.float32), schedule.marginal_std(t).astype(np.float32)


def oracle_graph(length_scale):
    """The oracle as an ONNX model: inputs latents, timesteps; output noise."""
    from onnx import TensorProto, helper, numpy_helper

    oracle = GaussianFieldOracle(length_scale)
    alpha2, sigma = _time_tables()
    consts = {
        "U": oracle.basis.astype(np.float32), "UT": oracle.basis.T.astype(np.float32),
        "eigen": oracle.eigen.astype(np.float32), "alpha2_table": alpha2, "sigma_table": sigma,
        "lo": np.float32(0), "hi": np.float32(TIME_TABLE - 1), "axes": np.array([2, 3, 4], np.int64),
    }
    nodes = [
        helper.make_node("Clip", ["timesteps", "lo", "hi"], ["t_clipped"]),
        helper.make_node("Round", ["t_clipped"], ["t_round"]),
        helper.make_node("Cast", ["t_round"], ["t_index"], to=TensorProto.INT64),
        helper.make_node("Gather", ["alpha2_table", "t_index"], ["alpha2_flat"]),
        helper.make_node("Gather", ["sigma_table", "t_index"], ["sigma_flat"]),
        helper.make_node("Unsqueeze", ["alpha2_flat", "axes"], ["alpha2"]),
        helper.make_node("Unsqueeze", ["sigma_flat", "axes"], ["sigma"]),
        helper.make_node("Mul", ["alpha2", "eigen"], ["scaled"]),
        helper.make_node("Mul", ["sigma", "sigma"], ["variance"]),
        helper.make_node("Add", ["scaled", "variance"], ["denominator"]),
        helper.make_node("Div", ["sigma", "denominator"], ["gain"]),
        helper.make_node("MatMul", ["UT", "latents"], ["left"]),
        helper.make_node("MatMul", ["left", "U"], ["spectral"]),
        helper.make_node("Mul", ["gain", "spectral"], ["filtered"]),
        helper.make_node("MatMul", ["U", "filtered"], ["back"]),
        helper.make_node("MatMul", ["back", "UT"], ["noise"]),
    ]
    shape = ["batch", len(MODALITIES), 4, WINDOW, WINDOW]
    graph = helper.make_graph(
        nodes, f"gaussian_field_oracle_l{length_scale:g}",
        [helper.make_tensor_value_info("latents", TensorProto.FLOAT, shape),
         helper.make_tensor_value_info("timesteps", TensorProto.FLOAT, ["batch", len(MODALITIES)])],
        [helper.make_tensor_value_info("noise", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(np.asarray(value), name) for name, value in consts.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


# The colour of each latent channel mix: image = tanh(COLOURS @ latent) per pixel.
COLOURS = np.array([[0.9, 0.3, -0.2, 0.1], [0.2, 0.8, 0.3, -0.1], [-0.1, 0.2, 0.9, 0.3]], np.float32)


def decoder_graph():
    """Latents [B, 4, h, w] -> image [B, 3, 8h, 8w] in [-1, 1]: a colour per latent, no context."""
    from onnx import TensorProto, helper, numpy_helper

    weight = COLOURS[:, :, None, None]
    nodes = [
        helper.make_node("Conv", ["latents", "W"], ["colour"], kernel_shape=[1, 1]),
        helper.make_node("Tanh", ["colour"], ["bounded"]),
        helper.make_node("Resize", ["bounded", "", "scales"], ["image"], mode="nearest"),
    ]
    graph = helper.make_graph(
        nodes, "per_latent_colour_decoder",
        [helper.make_tensor_value_info("latents", TensorProto.FLOAT, ["batch", 4, "h", "w"])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [numpy_helper.from_array(weight.astype(np.float32), "W"),
         numpy_helper.from_array(np.array([1, 1, 8, 8], np.float32), "scales")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def encoder_graph():
    """Image [B, 3, H, W] -> moments [B, 8, H/8, W/8]: 8 x 8 means mixed into 4 means, log-variance -10."""
    from onnx import TensorProto, helper, numpy_helper

    weight = np.zeros((8, 3, 1, 1), np.float32)
    weight[:4, :, 0, 0] = np.linalg.pinv(COLOURS) / 0.18215  # the posterior scales means by 0.18215
    bias = np.zeros(8, np.float32)
    bias[4:] = -10.0
    nodes = [
        helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Conv", ["pooled", "W", "B"], ["moments"], kernel_shape=[1, 1]),
    ]
    graph = helper.make_graph(
        nodes, "pooling_encoder",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("moments", TensorProto.FLOAT, ["batch", 8, "h", "w"])],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def write_oracle_folder(folder, length_scale):
    """A model folder (model.json and the three graphs) that CopGenModel.open accepts."""
    import onnx

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(oracle_graph(length_scale), folder / "denoiser.onnx")
    onnx.save(encoder_graph(), folder / "vae_encoder.onnx")
    onnx.save(decoder_graph(), folder / "vae_decoder.onnx")
    info = {
        "name": f"gaussian-field-oracle-l{length_scale:g}", "precision": "fp32", "modalities": list(MODALITIES),
        "note": "test oracle: exact denoiser of a Gaussian random field, not COP-GEN-Beta",
    }
    (folder / "model.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return folder
