"""A model installed from unofficial checkpoints says so, with its heads, everywhere: `models
list`, every output's tags (and so QGIS layer metadata and STAC items); `--heads` sets the heads
of such a denoiser and is refused for official files."""

import subprocess
import sys

import pytest
import rasterio

from plugin.engine.provenance import BY_HAND, OFFICIAL, UNOFFICIAL, checkpoint_provenance

from conftest import REPO, SHARED

TILE = SHARED / "data" / "majortom_s2l2a" / "282D_485L_3_3.tif"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "plugin", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.timeout(300)
def test_unofficial_install_is_flagged_in_models_list_and_outputs(fixtures_dir, tmp_path):
    root = tmp_path / "models"
    installed = cli("models", "install", "--model-dir", root, "--denoiser", fixtures_dir / "denoiser_tiny.pth",
                    "--vae", fixtures_dir / "vae_tiny.pth", "--allow-unofficial", "--heads", "2")
    assert installed.returncode == 0, installed.stderr
    assert "pre-processing" not in installed.stderr  # no warning a user cannot act on
    listing = cli("models", "list", "--model-dir", root)
    assert "fp32: installed (unofficial checkpoints, 2 heads)" in listing.stdout
    out = tmp_path / "out"
    generated = cli("generate", "--model", root / "cop-gen-beta", "--condition", f"s2_l2a={TILE}:4,3,2",
                    "--generate", "dem", "--steps", "2", "--device", "cpu", "--out", out)
    assert generated.returncode == 0, generated.stderr
    (path,) = out.glob("*.tif")
    with rasterio.open(path) as dataset:
        tags = dataset.tags()
    assert (tags["checkpoints"], tags["num_heads"]) == (UNOFFICIAL, "2")


def test_heads_is_only_for_unofficial_local_files(tmp_path):
    refused = cli("models", "install", "--model-dir", tmp_path / "models", "--heads", "2")
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("error: --heads: only for local checkpoints installed as unofficial")
    assert not (tmp_path / "models").exists()


def test_a_folder_without_install_record_is_converted_by_hand(tiny_model_dir, tmp_path):
    assert checkpoint_provenance(tiny_model_dir, {"num_heads": 2}) == {"checkpoints": BY_HAND, "num_heads": "2"}
    (tmp_path / "install.json").write_text('{"unofficial": false, "sources": {}}')
    assert checkpoint_provenance(tmp_path, {"num_heads": 16})["checkpoints"] == OFFICIAL
