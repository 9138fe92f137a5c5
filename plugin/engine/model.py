"""CopGenModel: a converted model folder opened with ONNX Runtime, with the reference sampling.

Sampling follows the official ``sample_n_triffuser.py``: at every network call the generated
modalities carry the solver state at time t x 1000, the conditioning modalities their fixed
latents at time 0, and the modalities neither generated nor given fresh N(0, 1) noise at time 0.

Sampling is the one-window case of :func:`plugin.engine.canvas.sample_canvas`, with its random
streams (:func:`plugin.engine.canvas.canvas_streams`): from ``SeedSequence(s)``, the first child
draws the initial noise x_T ([n_generated, B, 4, 32, 32] float32, once), the second the noise of
the ignored modalities (one [B, 4, 32, 32] float32 draw per ignored modality, in modality order,
at every network call). ``encode(seed=s)`` draws its posterior noise from ``default_rng(s)``.
"""

from functools import partial
from pathlib import Path

import numpy as np

from . import fast_path
from .checks import agreed_batch, count as _count, float_array as _float_array
from .canvas import canvas_streams, sample_canvas, sample_posterior
from .errors import InputError, ModelError
from .model_folder import DECODER_FILE, DENOISER_FILE, ENCODER_FILE, check_graph_role, read_info
from .families.beta.registry import LATENT_CHANNELS, LATENT_SIZE, MODALITIES
from .precision import DEFAULT_PREFERENCE, INSTALL_HINT, resolve
from .families.beta.request_rules import modality_keys
from .solvers import check_solver_args

# Items per ONNX call: bounds memory (a full-size VAE needs a few hundred MiB per 256 px image).
DEFAULT_MAX_BATCH = 4
LATENT_TILE = (LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE)
IMAGE_RANGE_SLACK = 1e-3  # images must lie in [-1, 1]; allow rounding


class CopGenModel:
    """The three ONNX networks of a converted COP-GEN-Beta folder; see the module docstring."""

    family = "cop-gen-beta"
    modalities = MODALITIES

    def __init__(self, info, denoiser, encoder, decoder, max_batch=None, plan=None):
        self.info = info
        self.plan = plan  # what plugin.engine.precision.resolve decided (None: built by hand)
        # what the outputs' provenance must say: the folder's precision, or "int8"
        self.denoiser_precision = plan.denoiser_precision if plan else info.get("precision", "")
        self.max_batch = _count("max_batch", DEFAULT_MAX_BATCH if max_batch is None else max_batch)
        self._denoiser = denoiser
        self._encoder = encoder
        self._decoder = decoder

    @classmethod
    def open(cls, model_dir, device="auto", threads=None, max_batch=None, preference=DEFAULT_PREFERENCE):
        """Open a folder written by ``plugin.engine.convert.convert`` (or ``models install``).

        device and preference ("faithful" / "fast") go through the one policy,
        :func:`plugin.engine.precision.resolve`; the result is ``self.plan`` (its ``notes``
        say what was substituted for what was asked).
        """
        model_dir = Path(model_dir).expanduser()  # "~/.local/share/copgen-beta/..." as the README writes it
        info = _read_info(model_dir / "model.json") if model_dir.is_dir() else None
        plan = fast_path.apply(resolve(model_dir, device, preference, info=info), info, threads)
        sessions = [
            fast_path.open_network(plan, name, threads)
            for name in ("denoiser", "vae_encoder", "vae_decoder")
        ]
        for role, session in zip((DENOISER_FILE, ENCODER_FILE, DECODER_FILE), sessions):
            check_graph_role(role, session.input_names, session.output_names, session.path)
        return cls(info, *sessions, max_batch=max_batch, plan=plan)

    @property
    def provider(self):
        """The ONNX Runtime execution provider the denoiser runs on."""
        return self._denoiser.provider

    # -- networks -------------------------------------------------------------------------

    def denoise(self, latents, timesteps):
        """Noise prediction [N, 4, 4, 32, 32] for latents [N, 4, 4, 32, 32] at timesteps [N, 4]."""
        latents = _float_array("latents", latents, (None, len(MODALITIES)) + LATENT_TILE)
        timesteps = _float_array("timesteps", timesteps, (len(latents), len(MODALITIES)))
        return self._run_batched(self._denoiser, None, latents=latents, timesteps=timesteps)

    def encode_moments(self, images, cancel=None):
        """Posterior moments [B, 8, H/8, W/8] (mean, logvar) of images [B, 3, H, W] in [-1, 1];
        ``cancel()`` returning True stops it mid-call with Cancelled."""
        images = _float_array("images", images, (None, 3, None, None))
        height, width = images.shape[2:]
        if height % 8 or width % 8:
            raise InputError(
                f"images: height and width must be multiples of 8, not {height} x {width}"
            )
        if np.abs(images).max() > 1 + IMAGE_RANGE_SLACK:
            raise InputError("images must be scaled to [-1, 1] (RGB / 127.5 - 1)")
        return self._run_batched(self._encoder, cancel, image=images)

    def encode(self, images, seed=None, cancel=None):
        """Sampled latents x 0.18215 [B, 4, H/8, W/8] of images [B, 3, H, W] in [-1, 1]."""
        moments = self.encode_moments(images, cancel)
        shape = (len(moments), LATENT_CHANNELS) + moments.shape[2:]
        noise = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
        return sample_posterior(moments, noise)

    def decode(self, latents, cancel=None):
        """Images [B, 3, 8h, 8w] in [0, 1] from latents [B, 4, h, w] (already x 0.18215);
        ``cancel`` as in encode_moments."""
        latents = _float_array("latents", latents, (None, LATENT_CHANNELS, None, None))
        images = self._run_batched(self._decoder, cancel, latents=latents)
        return np.clip((images + 1.0) / 2.0, 0.0, 1.0)

    def _run_batched(self, session, cancel, **inputs):
        """The session's first output over all items, max_batch items per call (cancel: see
        RuntimeSession.run; None keeps the plain run(feeds) that session wrappers offer)."""
        count = len(next(iter(inputs.values())))
        run = session.run if cancel is None else partial(session.run, cancel=cancel)
        outputs = [
            run({name: value[i:i + self.max_batch] for name, value in inputs.items()})[0]
            for i in range(0, count, self.max_batch)
        ]
        return np.concatenate(outputs)

    # -- sampling -------------------------------------------------------------------------

    def sample(self, generate, conditions=None, steps=50, solver="dpm-solver-fast", seed=None,
               x_T=None, batch=None, progress=None, cancel=None):
        """Generate modalities, optionally conditioned on others, exactly as the reference does.

        generate: modality keys (any order; outputs follow modality order). conditions:
        {key: latents [B, 4, 32, 32]} (VAE latents x 0.18215). x_T: initial noise
        [n_generated, B, 4, 32, 32] of the generated modalities in modality order (drawn from
        ``seed`` when None). batch: B when neither conditions nor x_T fix it (default 1).
        progress(done, steps) follows the network calls; cancel() returning True stops with
        Cancelled. Returns {key: latents [B, 4, 32, 32] float32} for the generated keys only;
        the conditions are left untouched. All inputs are checked before any work.
        """
        generated_idx = _modality_indices("generate", generate)
        if not generated_idx:
            raise InputError("nothing to generate; name at least one modality", "generate")
        conditions = {} if conditions is None else conditions
        if not isinstance(conditions, dict):
            raise InputError("conditions must be a dict {modality: latents [B, 4, 32, 32]}")
        cond_idx = _modality_indices("conditions", list(conditions))
        for index in sorted(set(generated_idx) & set(cond_idx)):
            raise InputError("both generated and given as condition", f"conditions.{MODALITIES[index]}")
        cond_latents = [
            _float_array(f"conditions[{key!r}]", conditions[key], (None,) + LATENT_TILE)
            for key in (MODALITIES[i] for i in cond_idx)
        ]
        if x_T is not None:
            x_T = _float_array("x_T", x_T, (len(generated_idx), None) + LATENT_TILE)
        batch = _batch_size(cond_latents, cond_idx, x_T, batch)
        check_solver_args(steps, solver)

        cond = np.stack(cond_latents) if cond_latents else np.zeros((0, batch) + LATENT_TILE, np.float32)
        result = sample_canvas(
            self.denoise, generated_idx, cond_idx, cond, (batch, LATENT_SIZE, LATENT_SIZE), steps, solver,
            streams=canvas_streams(seed), x_T=x_T, max_windows=self.max_batch, progress=progress,
            cancel=cancel,
        )
        return {MODALITIES[index]: result[k] for k, index in enumerate(generated_idx)}


def _read_info(path):
    info = read_info(path, INSTALL_HINT)
    if list(info.get("modalities", [])) != list(MODALITIES):
        raise ModelError(f"{path}: 'modalities' must be {list(MODALITIES)}; {INSTALL_HINT}", "model")
    return info


def _modality_indices(field, names):
    """Sorted modality indices of a list of keys (a single key string is accepted too); the
    request's rule (families/beta/request_rules.modality_keys)."""
    return [MODALITIES.index(key) for key in modality_keys(field, [names] if isinstance(names, str) else names)]


def _batch_size(cond_latents, cond_idx, x_T, batch):
    """The one batch size B that conditions, x_T and ``batch`` agree on (1 if none says)."""
    sizes = {
        f"conditions[{MODALITIES[i]!r}]": len(latent) for latent, i in zip(cond_latents, cond_idx)
    }
    if x_T is not None:
        sizes["x_T"] = x_T.shape[1]
    if batch is not None:
        sizes["batch"] = _count("batch", batch)
    return agreed_batch(sizes)
