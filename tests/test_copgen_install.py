"""`models install cop-gen`: the denoiser and the ten VAEs downloaded from a local HTTP server
(127.0.0.1) in the official layout, or taken from local files, converted and installed beside
COP-GEN-Beta; free space checked before downloading; verify, list and remove."""

import json
import shutil
from collections import namedtuple

import pytest

from plugin.cli import main
from plugin.engine import load
from plugin.engine.errors import DownloadError, InputError
from plugin.engine.families.copgen.registry import BY_KEY, IMAGE_MODALITIES
from plugin.engine.manager import DOWNLOADS, KNOWN_HASHES, ModelManager

from _h1_http import FileServer
from fast_choice import keep_int8_chosen

pytestmark = pytest.mark.timeout(300)
NAME = "cop-gen-tiny"


@pytest.fixture(scope="module")
def reference(shared_dir):
    return shared_dir / "fixtures" / "copgen_reference"


def _served_files(reference):
    files = {"/copgen-base/denoiser_tiny.pth": (reference / "denoiser_tiny.pth").read_bytes()}
    for key in IMAGE_MODALITIES:
        folder = BY_KEY[key].vae_folder
        files[f"/copgen-vaes/{folder}/model-50-ema.pth"] = (reference / "vae" / folder / "model-50-ema.pth").read_bytes()
    return files


def _registry(base_url):
    sources = {"denoiser": {"file_name": "denoiser_tiny.pth", "url": f"{base_url}/copgen-base/denoiser_tiny.pth",
                            "sha256": None, "approx_size": 500_000}}
    for key in IMAGE_MODALITIES:
        folder = BY_KEY[key].vae_folder
        sources[f"vae.{key}"] = {"file_name": "model-50-ema.pth", "folder": f"copgen-vaes/{folder}",
                                 "url": f"{base_url}/copgen-vaes/{folder}/model-50-ema.pth", "sha256": None}
    return {"models": {NAME: {"title": "tiny COP-GEN", "family": "cop-gen", "num_heads": 2, "sources": sources}}}


@pytest.fixture
def server(reference):
    with FileServer(_served_files(reference)) as running:
        yield running


def _manager(root, registry):
    manager = ModelManager(model_root=root, registry=registry)
    manager.timeout_s, manager.max_attempts, manager.retry_delay_s = 10, 3, 0
    return manager


def test_install_downloads_all_eleven_files_converts_and_verifies(tmp_path, server):
    manager = _manager(tmp_path, _registry(server.url))
    messages = []
    folder = manager.install(NAME, progress=lambda done, total, message: messages.append(message))
    assert len(server.requests) == 11
    assert sum(m.startswith("downloading model-50-ema.pth") for m in set(messages)) >= 1
    model = load(folder, device="cpu")
    assert model.family == "cop-gen" and model.denoiser_precision == "fp32"
    assert keep_int8_chosen(folder) and load(folder, device="cpu", preference="fast").denoiser_precision == "int8"
    summary = manager.verify(NAME)
    assert len(summary["sources"]) == 11 and {s["status"] for s in summary["sources"].values()} == {"official"}
    # first download recorded every hash; the checkpoints are gone once installed
    known = json.loads((tmp_path / DOWNLOADS / KNOWN_HASHES).read_text())
    assert len(known) == 11
    assert not list((tmp_path / DOWNLOADS).rglob("*.pth"))
    removed = manager.remove(NAME)
    assert folder in removed and not folder.exists()


def test_install_from_local_files_in_the_official_layout(tmp_path, reference, capsys):
    root = tmp_path / "models"
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps(_registry("http://127.0.0.1:9")))  # never contacted
    code = main(["models", "install", NAME, "--model-dir", str(root), "--registry", str(registry),
                 "--denoiser", str(reference / "denoiser_tiny.pth"), "--vae-dir", str(reference / "vae")])
    assert code == 0, capsys.readouterr().err
    assert (root / NAME / "model.json").is_file()
    install = json.loads((root / NAME / "install.json").read_text())
    assert {s["origin"] for s in install["sources"].values()} == {"local"}


def test_a_missing_local_vae_is_named_before_any_download(tmp_path, reference, server):
    vaes = tmp_path / "vaes"
    shutil.copytree(reference / "vae", vaes)
    shutil.rmtree(vaes / BY_KEY["LULC_LULC"].vae_folder)
    manager = _manager(tmp_path / "models", _registry(server.url))
    with pytest.raises(InputError, match="LULC_192x192_LULC_latent_8/model-50-ema.pth"):
        manager.install(NAME, local_files={"vae_dir": vaes})
    assert server.requests == [] and not (tmp_path / "models" / NAME).exists()


def test_free_space_is_checked_before_downloading(tmp_path, server, monkeypatch):
    import plugin.engine.downloads as downloads_module

    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(downloads_module.shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 1000, 1000))
    manager = _manager(tmp_path, _registry(server.url))
    with pytest.raises(DownloadError, match="not enough free space to download"):
        manager.install(NAME)
    assert server.requests == []


def test_shipped_registry_lists_both_families():
    registry = ModelManager(model_root="/nonexistent").registry["models"]
    assert registry["cop-gen"]["family"] == "cop-gen" and len(registry["cop-gen"]["sources"]) == 11
    assert all("copgen-vaes" in s["url"] for r, s in registry["cop-gen"]["sources"].items() if r != "denoiser")
    assert registry["cop-gen-beta"]["family"] == "cop-gen-beta"


def test_offline_install_says_the_whole_command_with_the_vae_folder(tmp_path, capsys):
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps(_registry("http://127.0.0.1:9")))  # nothing listens there
    code = main(["models", "install", NAME, "--model-dir", str(tmp_path / "models"), "--registry", str(registry)])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1
    assert (f"python -m plugin models install {NAME} --model-dir {tmp_path / 'models'} --registry {registry} "
            "--denoiser denoiser_tiny.pth --vae-dir copgen-vaes") in line
    assert "LULC_192x192_LULC_latent_8" in line and "/copgen-vaes/<folder>/model-50-ema.pth" in line
    assert not (tmp_path / "models").exists()
