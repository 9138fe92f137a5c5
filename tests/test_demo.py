"""`python -m plugin demo`, the README's main job, end to end: download from a local server
(standing in for Hugging Face), convert, generate from the bundled sample, write a preview."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import rasterio
from osgeo import gdal

from _h1_http import FileServer
from fast_choice import keep_int8_chosen

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "majortom_s2l2a_282D_485L.tif"


def test_demo_installs_the_model_and_generates_from_the_sample(tmp_path, fixtures_dir):
    files = {f"/{name}": (fixtures_dir / name).read_bytes() for name in ("denoiser_tiny.pth", "vae_tiny.pth")}
    with FileServer(files) as server:
        registry = {
            "models": {
                "cop-gen-beta": {
                    "title": "tiny random-weight stand-in",
                    "num_heads": 2,
                    "sources": {
                        role: {
                            "file_name": name,
                            "url": f"{server.url}/{name}",
                            "sha256": hashlib.sha256(files[f"/{name}"]).hexdigest(),
                        }
                        for role, name in (("denoiser", "denoiser_tiny.pth"), ("vae", "vae_tiny.pth"))
                    },
                }
            }
        }
        registry_file = tmp_path / "registry.json"
        registry_file.write_text(json.dumps(registry))
        out = tmp_path / "demo"
        result = subprocess.run(
            [sys.executable, "-m", "plugin", "demo", "--registry", str(registry_file), "--model-dir",
             str(tmp_path / "models"), "--out", str(out), "--steps", "2", "--device", "cpu"],
            cwd=REPO, capture_output=True, text=True, timeout=600,
        )
    assert result.returncode == 0, result.stderr
    assert [path for path, _ in server.requests] == ["/denoiser_tiny.pth", "/vae_tiny.pth"]
    assert (tmp_path / "models" / "cop-gen-beta" / "model.json").is_file()

    names = sorted(p.name for p in out.iterdir())
    assert names == ["demo_seed0_dem.tif", "demo_seed0_s1_rtc.tif", "demo_seed0_s2_l1c.tif", "preview.png"]
    with rasterio.open(SAMPLE) as sample:
        sample_bounds, sample_crs = sample.bounds, sample.crs
    for name in names[:3]:
        with rasterio.open(out / name) as ds:
            assert ds.crs == sample_crs
            assert (ds.width, ds.height, ds.res) == (256, 256, (10.0, 10.0))
            # the 224 px tile, padded to one 256 px model tile around its centre; padding is nodata
            assert abs((ds.bounds.left + ds.bounds.right) / 2 - (sample_bounds.left + sample_bounds.right) / 2) < 1e-6
            mask = ds.dataset_mask()
            assert mask[16:240, 16:240].all() and not mask[:16].any()
            assert ds.tags()["steps"] == "2" and ds.tags()["denoiser_precision"] == "fp32"
    preview = gdal.Open(str(out / "preview.png"))
    assert preview.GetDriver().ShortName == "PNG" and preview.RasterCount == 3 and preview.RasterXSize > 256
    assert np.ptp(preview.ReadAsArray()) > 0


def test_demo_fast_preset_uses_the_int8_denoiser_and_20_steps(tmp_path, fixtures_dir):
    """With the model installed (as `models install` leaves it, int8 denoiser included), the fast
    preset needs no network and records what it ran in the outputs."""
    from plugin.engine.manager import ModelManager

    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"models": {"cop-gen-beta": {
        "title": "tiny", "num_heads": 2, "sources": {
            "denoiser": {"file_name": "d.pth", "url": "http://127.0.0.1:9/d.pth", "sha256": None},
            "vae": {"file_name": "v.pth", "url": "http://127.0.0.1:9/v.pth", "sha256": None}}}}}))
    manager = ModelManager(model_root=tmp_path / "models", registry=registry)
    folder = manager.install("cop-gen-beta", local_files={
        "denoiser": fixtures_dir / "denoiser_tiny.pth", "vae": fixtures_dir / "vae_tiny.pth"})
    keep_int8_chosen(folder)  # the fast path as a measurement left it (tests/test_fast_path.py)
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "plugin", "demo", "--model-dir", str(tmp_path / "models"), "--registry",
         str(registry), "--out", str(out), "--fast", "--device", "cpu"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    with rasterio.open(out / "demo_seed0_s1_rtc.tif") as ds:
        assert ds.tags()["denoiser_precision"] == "int8" and ds.tags()["steps"] == "20"
    # The model line says where the weights come from, as models list does ("... checkpoints, 2 heads").
    from plugin.engine.provenance import describe_weights

    (model_line,) = [line for line in result.stdout.splitlines() if line.startswith("model: ")]
    assert model_line.endswith(f"; {describe_weights(folder)})") and "2 heads" in model_line, model_line


def test_demo_offline_names_the_command_that_installs_from_local_files(tmp_path):
    """No server (a port nothing listens on): one line with the whole `python -m plugin models
    install` command for local files and where each comes from, fast, and no folder left behind."""
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"models": {"cop-gen-beta": {
        "title": "tiny", "num_heads": 2, "sources": {
            "denoiser": {"file_name": "d.pth", "url": "http://127.0.0.1:9/d.pth", "sha256": None},
            "vae": {"file_name": "v.pth", "url": "http://127.0.0.1:9/v.pth", "sha256": None}}}}}))
    result = subprocess.run(
        [sys.executable, "-m", "plugin", "demo", "--model-dir", str(tmp_path / "models"), "--registry",
         str(registry), "--out", str(tmp_path / "demo"), "--device", "cpu"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: http://127.0.0.1:9/d.pth: cannot reach the server")
    # The whole command, runnable as written once the files are saved here, and their origins.
    command = lines[0].split("run: ")[1].split("  (")[0]
    assert command == (f"python -m plugin models install cop-gen-beta --model-dir {tmp_path / 'models'} "
                       f"--registry {registry} --denoiser d.pth --vae v.pth")
    assert "--denoiser d.pth from http://127.0.0.1:9/d.pth" in lines[0] and "--vae v.pth from http://127.0.0.1:9/v.pth" in lines[0]
    assert "--allow-unofficial" in lines[0]
    assert not (tmp_path / "models").exists() and not (tmp_path / "demo").exists()  # no empty downloads/ either


def test_demo_with_cop_gen_writes_every_other_modality_in_physical_units(tmp_path, shared_dir):
    """`demo --model cop-gen`: the eleven checkpoints downloaded in the official layout, then every
    modality but the sample's own sensor (and its location) generated at native resolution."""
    from plugin.engine.families.copgen.registry import BY_KEY, IMAGE_MODALITIES

    root = shared_dir / "fixtures" / "copgen_reference"
    files = {"/denoiser_tiny.pth": (root / "denoiser_tiny.pth").read_bytes()}
    sources = {"denoiser": {"file_name": "denoiser_tiny.pth", "sha256": None}}
    for key in IMAGE_MODALITIES:
        folder = BY_KEY[key].vae_folder
        files[f"/{folder}/model-50-ema.pth"] = (root / "vae" / folder / "model-50-ema.pth").read_bytes()
        sources[f"vae.{key}"] = {"file_name": "model-50-ema.pth", "folder": f"copgen-vaes/{folder}", "sha256": None}
    with FileServer(files) as server:
        for role, source in sources.items():
            path = "denoiser_tiny.pth" if role == "denoiser" else f"{source['folder'].split('/')[1]}/model-50-ema.pth"
            source["url"] = f"{server.url}/{path}"
        registry = {"models": {"cop-gen": {"title": "tiny", "family": "cop-gen", "num_heads": 2, "sources": sources}}}
        registry_file = tmp_path / "registry.json"
        registry_file.write_text(json.dumps(registry))
        out = tmp_path / "demo"
        result = subprocess.run(
            [sys.executable, "-m", "plugin", "demo", "--model", "cop-gen", "--registry", str(registry_file),
             "--model-dir", str(tmp_path / "models"), "--out", str(out), "--steps", "2", "--device", "cpu"],
            cwd=REPO, capture_output=True, text=True, timeout=600,
        )
    assert result.returncode == 0, result.stderr
    # class maps keep their names and colours in an .aux.xml beside the COG
    written = sorted(p.name for p in out.iterdir() if not p.name.endswith(".aux.xml"))
    assert sorted(p.name for p in out.glob("*.aux.xml")) == ["demo_seed0_LULC_LULC.tif.aux.xml",
                                                            "demo_seed0_S2L1C_cloud_mask.tif.aux.xml"]
    expected = [key for key in IMAGE_MODALITIES if not key.startswith("S2L2A")]
    assert written == sorted([f"demo_seed0_{key}.tif" for key in expected] + ["demo_seed0_windows.geojson"])
    with rasterio.open(out / "demo_seed0_DEM_DEM.tif") as dem, rasterio.open(SAMPLE) as sample:
        assert dem.res == (30.0, 30.0) and dem.crs == sample.crs and dem.dtypes[0] == "float32"
