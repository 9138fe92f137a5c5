"""`python -m plugin convert` on COP-GEN checkpoints: the family read from the denoiser, the
ten VAEs from the official folder layout, and bad input refused in one line, writing nothing."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.checkpoint_write import save_pth

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def reference(shared_dir):
    return shared_dir / "fixtures" / "copgen_reference"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "plugin", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=240)


def copy_vaes(reference, target):
    shutil.copytree(reference / "vae", target)
    return target


def test_convert_recognises_cop_gen_and_writes_a_loadable_folder(reference, tmp_path):
    out = tmp_path / "model"
    done = run_cli("convert", "--denoiser", reference / "denoiser_tiny.pth", "--vae-dir", reference / "vae",
                   "--out", out, "--heads", 2)
    assert done.returncode == 0, done.stderr
    info = json.loads((out / "model.json").read_text())
    assert info["family"] == "cop-gen" and info["num_heads"] == 2
    assert len([role for role in info["sources"] if role.startswith("vae.")]) == 10
    assert all((out / name).stat().st_size == entry["bytes"] for name, entry in info["files"].items())
    again = run_cli("convert", "--denoiser", reference / "denoiser_tiny.pth", "--vae-dir", reference / "vae",
                    "--out", out, "--heads", 2)
    assert again.returncode == 0 and "already converted" in again.stderr


def _refused(args, tmp_path, *words):
    out = tmp_path / "out"
    done = run_cli("convert", *args, "--out", out)
    assert done.returncode in (1, 2), done.stdout + done.stderr  # bad file / bad option
    lines = [line for line in done.stderr.splitlines() if not line.startswith("[")]  # not progress
    assert len(lines) == 1 and lines[0].startswith("error: ") and all(word in lines[0] for word in words), done.stderr
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    return lines[0]


def test_missing_vae_is_named(reference, tmp_path):
    vaes = copy_vaes(reference, tmp_path / "vaes")
    shutil.rmtree(vaes / "DEM_64x64_DEM_latent_8")
    _refused(["--denoiser", reference / "denoiser_tiny.pth", "--vae-dir", vaes, "--heads", 2], tmp_path,
             "--vae-dir", "DEM_64x64_DEM_latent_8/model-50-ema.pth", "missing")


def test_extra_vae_is_named(reference, tmp_path):
    vaes = copy_vaes(reference, tmp_path / "vaes")
    shutil.copytree(vaes / "DEM_64x64_DEM_latent_8", vaes / "S3_OLCI_latent_8")
    _refused(["--denoiser", reference / "denoiser_tiny.pth", "--vae-dir", vaes, "--heads", 2], tmp_path,
             "--vae-dir", "S3_OLCI_latent_8", "no COP-GEN modality uses")


def test_vae_of_another_modality_is_named(reference, tmp_path):
    vaes = copy_vaes(reference, tmp_path / "vaes")
    target = vaes / "S2L2A_192x192_B4_3_2_8_latent_8" / "model-50-ema.pth"
    target.unlink()
    shutil.copy(vaes / "S1RTC_192x192_VV_VH_latent_8" / "model-50-ema.pth", target)  # 2 channels, not 4
    _refused(["--denoiser", reference / "denoiser_tiny.pth", "--vae-dir", vaes, "--heads", 2], tmp_path,
             str(target), "2 input", "S2L2A_B02_B03_B04_B08 has 4")


def test_beta_vae_given_to_cop_gen_is_named(reference, fixtures_dir, tmp_path):
    vaes = copy_vaes(reference, tmp_path / "vaes")
    target = vaes / "S2L2A_192x192_B4_3_2_8_latent_8" / "model-50-ema.pth"
    target.unlink()
    shutil.copy(fixtures_dir / "vae_tiny.pth", target)
    _refused(["--denoiser", reference / "denoiser_tiny.pth", "--vae-dir", vaes, "--heads", 2], tmp_path,
             str(target), "4 latent channels", "COP-GEN-Beta")


def test_beta_denoiser_with_a_vae_folder_and_cop_gen_with_one_vae_are_refused(reference, fixtures_dir, tmp_path):
    _refused(["--denoiser", fixtures_dir / "denoiser_tiny.pth", "--vae-dir", reference / "vae", "--heads", 2],
             tmp_path, "--vae", "COP-GEN-Beta denoiser")
    _refused(["--denoiser", reference / "denoiser_tiny.pth", "--vae", fixtures_dir / "vae_tiny.pth", "--heads", 2],
             tmp_path, "--vae-dir", "COP-GEN denoiser")


def test_unknown_layout_and_wrong_heads_are_named(reference, tmp_path):
    strange = tmp_path / "strange.pth"
    save_pth({"pos_embed": np.zeros((1, 7, 4), np.float32), "w": np.zeros(3, np.float32)}, strange)
    _refused(["--denoiser", strange, "--vae-dir", reference / "vae"], tmp_path, str(strange), "not a COP-GEN")
    _refused(["--denoiser", reference / "denoiser_tiny.pth", "--vae-dir", reference / "vae", "--heads", 3],
             tmp_path, "--heads", "3")
