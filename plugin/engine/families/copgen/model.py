"""CopGenModel: a converted COP-GEN folder opened with ONNX Runtime (the Python contract).

One denoiser graph (inputs: one latent per modality, named by its official key, and
``timesteps`` [B, 12]; outputs ``noise.<key>``) and one encoder/decoder pair per image
modality. VAE sessions are opened on first use, so a run loads only the VAEs of the
modalities it encodes or decodes (each full-size VAE is ~335 MB).
"""

from functools import partial
from pathlib import Path

import numpy as np

from ... import fast_path
from ...checks import agreed_batch, count as _count, float_array as _float_array
from ...errors import InputError, ModelError
from ...model_folder import read_info
from ...precision import DEFAULT_PREFERENCE, INSTALL_HINT, resolve
from ...runtime import open_session
from ...solvers import check_solver_args
from ...vae_canvas import sample_posterior
from . import FAMILY
from .files import decoder_name, encoder_name
from .registry import BY_KEY, LATENT_CHANNELS, MODALITIES, expand_names, get_modality
from .sampling import sample_joint, sampling_streams

DEFAULT_MAX_BATCH = 4
DEFAULT_STEPS = 50  # the official sample_steps
TIMESTEPS = "timesteps"


class CopGenModel:
    """The networks of a converted COP-GEN folder; see the module docstring."""

    family = FAMILY
    modalities = MODALITIES

    def __init__(self, info, plan, denoiser, threads=None, max_batch=None):
        self.info = info
        self.plan = plan
        self.denoiser_precision = plan.denoiser_precision if plan else info.get("precision", "")
        self.max_batch = _count("max_batch", DEFAULT_MAX_BATCH if max_batch is None else max_batch)
        self._denoiser = denoiser
        self._threads = threads
        self._vae_sessions = {}

    @classmethod
    def open(cls, model_dir, device="auto", threads=None, max_batch=None, preference=DEFAULT_PREFERENCE,
             info=None):
        model_dir = Path(model_dir).expanduser()
        info = read_info(model_dir / "model.json", INSTALL_HINT) if info is None else info
        plan = fast_path.apply(resolve(model_dir, device, preference, info=info), info, threads)
        denoiser = fast_path.open_network(plan, "denoiser", threads)
        expected = sorted(MODALITIES) + [TIMESTEPS]
        if sorted(denoiser.input_names) != expected:
            raise ModelError(
                f"{denoiser.path}: takes {denoiser.input_names}, not the COP-GEN denoiser's inputs "
                f"(files swapped or replaced); {INSTALL_HINT}", "model",
            )
        return cls(info, plan, denoiser, threads=threads, max_batch=max_batch)

    @property
    def provider(self):
        return self._denoiser.provider

    def loaded_vaes(self):
        """The (role, key) pairs whose sessions are open, for tests and memory reports."""
        return sorted(self._vae_sessions)

    def _vae(self, role, key):
        if (role, key) not in self._vae_sessions:
            name = encoder_name(key) if role == "encoder" else decoder_name(key)
            graph = f"vae_{role}.{key}"
            self._vae_sessions[role, key] = open_session(
                self.plan.graphs[graph], device=self.plan.devices[graph], threads=self._threads
            ) if self.plan else None
            if self._vae_sessions[role, key] is None:
                raise ModelError(f"{name}: no plan to open it with", "model")
        return self._vae_sessions[role, key]

    # -- networks -------------------------------------------------------------------------

    def denoise(self, latents, timesteps):
        """{key: noise prediction} for latents {key: [N, *latent shape]} of all twelve
        modalities (scalars [N, 1, 1, 3]) at timesteps {key: [N]} (network time, 0..1000)."""
        if not isinstance(latents, dict) or not isinstance(timesteps, dict):
            raise InputError("latents and timesteps must be dicts keyed by modality")
        for name, given in (("latents", latents), ("timesteps", timesteps)):
            if sorted(given) != sorted(MODALITIES):
                missing = sorted(set(MODALITIES) - set(given))
                extra = sorted(set(given) - set(MODALITIES))
                raise InputError(f"{name} must hold all twelve modalities (missing {missing}, unknown {extra})")
        feeds = {key: _float_array(f"latents[{key!r}]", latents[key], (None,) + BY_KEY[key].latent_shape)
                 for key in MODALITIES}
        count = len(feeds[MODALITIES[0]])
        feeds[TIMESTEPS] = np.stack(
            [_float_array(f"timesteps[{key!r}]", timesteps[key], (count,)) for key in MODALITIES], axis=1
        )
        if any(len(value) != count for value in feeds.values()):
            raise InputError("latents and timesteps must all have the same batch size")
        outputs = self._run_batched(self._denoiser, feeds)
        names = self._denoiser.output_names
        return {name.split(".", 1)[1]: value for name, value in zip(names, outputs)}

    def encode_moments(self, key, x, cancel=None):
        """Posterior moments [B, 16, H/8, W/8] (mean, logvar) of x [B, C, H, W] (model domain);
        ``cancel()`` returning True stops it mid-call with Cancelled."""
        record = _image_modality(key)
        x = _float_array(f"{key} image", x, (None, record.channels, None, None))
        if x.shape[2] % 8 or x.shape[3] % 8:
            raise InputError(f"{key}: height and width must be multiples of 8, not {x.shape[2]} x {x.shape[3]}")
        return self._run_batched(self._vae("encoder", key), {"image": x}, cancel)[0]

    def encode(self, key, x, seed=None, noise=None, cancel=None):
        """Scaled posterior sample [B, 8, H/8, W/8] of x, as the official encode (never the mean);
        noise: the N(0, 1) draw [B, 8, H/8, W/8] (default: from ``default_rng(seed)``)."""
        moments = self.encode_moments(key, x, cancel)
        shape = (len(moments), LATENT_CHANNELS) + moments.shape[2:]
        if noise is None:
            noise = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
        noise = _float_array(f"{key} posterior noise", noise, shape)
        return sample_posterior(moments, noise, BY_KEY[key].scale)

    def decode(self, key, z, cancel=None):
        """Model-domain image [B, C, 8h, 8w], unclamped, of scaled latents z [B, 8, h, w];
        ``cancel`` as in encode_moments."""
        _image_modality(key)
        z = _float_array(f"{key} latents", z, (None, LATENT_CHANNELS, None, None))
        return self._run_batched(self._vae("decoder", key), {"latents": z}, cancel)[0]

    def preprocess(self, key, physical):
        from .processing import preprocess

        return preprocess(get_modality(key, "modality").key, physical)

    def postprocess(self, key, model_domain):
        from .processing import postprocess

        return postprocess(get_modality(key, "modality").key, model_domain)

    def _run_batched(self, session, feeds, cancel=None):
        """The session's outputs over all items, max_batch items per call (cancel: see
        RuntimeSession.run; None keeps the plain run(feeds) that session wrappers offer)."""
        count = len(next(iter(feeds.values())))
        run = session.run if cancel is None else partial(session.run, cancel=cancel)
        parts = [
            run({name: value[i:i + self.max_batch] for name, value in feeds.items()})
            for i in range(0, count, self.max_batch)
        ]
        return [np.concatenate([part[k] for part in parts]) for k in range(len(parts[0]))]

    # -- sampling -------------------------------------------------------------------------

    def sample(self, generate, conditions=None, steps=DEFAULT_STEPS, solver="dpm-solver-fast", seed=None,
               x_T=None, batch=None, progress=None, cancel=None, neither_noise=None):
        """{key: latents [B, *shape]} of the generated modalities, as ``CopgenModel.generate``.

        generate: official keys or sensor names. conditions: {key: scaled latents [B, 8, h, w]
        for images, encoded 3-vectors [B, 1, 1, 3] for location and date}. x_T: {key: [B,
        *shape]} initial noise per generated key (drawn from ``seed`` when None). batch: B when
        neither conditions nor x_T fix it. neither_noise(call, keys, batch) -> {key: latents}
        replaces the fresh per-call noise (tests feed the reference's recorded draws).
        """
        names = [generate] if isinstance(generate, str) else list(generate or ())
        generated = expand_names(names, "generate")
        if not generated:
            raise InputError("nothing to generate; name at least one modality", "generate")
        conditions = {} if conditions is None else conditions
        if not isinstance(conditions, dict):
            raise InputError("conditions must be a dict {modality: latents}", "conditions")
        given = {}
        for name, value in conditions.items():
            key = get_modality(name, "conditions").key
            if key in generated:
                raise InputError("both generated and given as condition", f"conditions.{key}")
            given[key] = _float_array(f"conditions[{key!r}]", value, (None,) + BY_KEY[key].latent_shape)
        if x_T is not None:
            if not isinstance(x_T, dict) or sorted(x_T) != sorted(generated):
                raise InputError(f"x_T must be a dict with exactly the generated keys {list(generated)}")
            x_T = {key: _float_array(f"x_T[{key!r}]", x_T[key], (None,) + BY_KEY[key].latent_shape)
                   for key in generated}
        batch = _batch_size(given, x_T, batch)
        check_solver_args(steps, solver)
        init, neither = sampling_streams(seed)
        if x_T is None:
            x_T = {key: init.standard_normal((batch,) + BY_KEY[key].latent_shape, dtype=np.float32)
                   for key in generated}
        return sample_joint(self.denoise, generated, given, x_T, steps, solver, rng=neither,
                            neither_noise=neither_noise, progress=progress, cancel=cancel)


def _image_modality(key):
    record = get_modality(key, "modality")
    if not record.has_vae:
        raise InputError(f"{key} is a scalar modality (no VAE); use preprocess/postprocess", "modality")
    return record


def _batch_size(given, x_T, batch):
    sizes = {f"conditions[{key!r}]": len(value) for key, value in given.items()}
    if x_T is not None:
        sizes.update({f"x_T[{key!r}]": len(value) for key, value in x_T.items()})
    if batch is not None:
        sizes["batch"] = _count("batch", batch)
    return agreed_batch(sizes)
