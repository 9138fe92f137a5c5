"""The benchmark's random COP-GEN checkpoints (plugin.benchmarks.copgen_weights) are ones the
converter accepts, in the official layout, with activations of sane size (tiny size here; the
full size is only counted)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plugin.benchmarks.copgen_weights import denoiser_parameters, write_copgen_checkpoints
from plugin.engine import load
from plugin.engine.families.copgen.registry import BY_KEY, IMAGE_MODALITIES, MODALITIES
from tests.checkpoint_write import save_pth

REPO = Path(__file__).resolve().parents[1]


def test_full_size_denoiser_has_the_published_parameter_count():
    assert denoiser_parameters("full") == 286_986_562


@pytest.mark.timeout(300)
def test_tiny_random_checkpoints_convert_open_and_give_unit_sized_noise(tmp_path):
    denoiser, vae_dir = write_copgen_checkpoints(tmp_path / "weights", save=save_pth, size="tiny")
    folders = sorted(p.name for p in vae_dir.iterdir())
    assert folders == sorted(BY_KEY[key].vae_folder for key in IMAGE_MODALITIES)
    out = tmp_path / "model"
    done = subprocess.run(
        [sys.executable, "-m", "plugin", "convert", "--denoiser", str(denoiser), "--vae-dir", str(vae_dir),
         "--out", str(out), "--heads", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr

    model = load(out, device="cpu")
    rng = np.random.default_rng(0)
    latents = {key: rng.standard_normal((1, *BY_KEY[key].latent_shape), dtype=np.float32) for key in MODALITIES}
    noise = model.denoise(latents, {key: np.array([500.0], np.float32) for key in MODALITIES})
    for key in MODALITIES:  # 1/sqrt(fan_in) weights: neither vanishing nor exploding
        assert 0.1 < float(np.std(noise[key])) < 3.0, (key, float(np.std(noise[key])))
    image = model.decode("S1RTC_vh_vv", latents["S1RTC_vh_vv"])
    assert image.shape == (1, 2, 192, 192) and 0.01 < float(np.std(image)) < 100.0
    assert model.loaded_vaes() == [("decoder", "S1RTC_vh_vv")]
