"""COP-GEN's estimate prices what the run does: every denoiser window, every VAE tile encoded and
decoded (with its area) and every VAE opened, counted before the run and compared with the
network calls the real run makes (tiny model, a condition over a whole 2 x 2-VAE-tile area).
No timing is asserted: the seconds are the counts times the kept speed figures."""

from pathlib import Path

import numpy as np
import pytest
import rasterio

from bench.estimate_ratio import cell_condition
from plugin.engine import load, speed
from plugin.engine.families.copgen.speed import seconds_per_vae_latent, seconds_per_window
from plugin.engine.request import GenerationRequest
from plugin.geo import physical_pipeline
from plugin.geo.lattice import ModelLattice
from plugin.geo.physical_pipeline import PhysicalConditionSpec, canvas_cost, generate_physical_area
from plugin.geo.pipeline import resolve_grid
from _geo_helpers import S2_TILE

pytestmark = pytest.mark.timeout(300)
GENERATE = ["DEM_DEM", "S1RTC_vh_vv"]


def counting(model, seen):
    """Count the windows, VAE tiles and their latent cells of ``model``'s network calls."""
    denoise, encode, decode = model.denoise, model.encode_moments, model.decode

    def count_denoise(latents, timesteps):
        batch = len(next(iter(latents.values())))
        seen["windows"] += batch
        seen["batches"].append(batch)
        return denoise(latents, timesteps)

    def count_encode(key, x, cancel=None):
        seen["encoder"] += [len(x), len(x) * (x.shape[2] // 8) * (x.shape[3] // 8)]
        return encode(key, x, cancel)

    def count_decode(key, z, cancel=None):
        seen["decoder"] += [len(z), len(z) * z.shape[2] * z.shape[3]]
        return decode(key, z, cancel)

    model.denoise, model.encode_moments, model.decode = count_denoise, count_encode, count_decode


def test_the_estimate_counts_every_window_vae_tile_and_vae_of_the_run(tmp_path, monkeypatch, copgen_model_dir):
    monkeypatch.setenv(speed.CACHE_DIR_ENV, str(tmp_path / "cache"))
    condition = cell_condition(720, tmp_path)  # 15 units: 2 x 2 VAE tiles at 10 m, several windows
    with rasterio.open(condition) as src:
        b = src.bounds
        extent = f"{b.left:.0f},{b.bottom:.0f},{b.right:.0f},{b.top:.0f},{src.crs.to_epsg()}"
    request = GenerationRequest(generate=GENERATE, conditions=(PhysicalConditionSpec("s2l2a", str(condition)),),
                                extent=extent, steps=2, family="cop-gen")
    model = load(copgen_model_dir, "cpu")
    estimate = canvas_cost(model, request, ModelLattice.from_grid(resolve_grid(request)))  # measures the speed
    seen = {"windows": 0, "batches": [], "encoder": np.zeros(2, int), "decoder": np.zeros(2, int)}
    counting(model, seen)
    announced = []
    monkeypatch.setattr(physical_pipeline, "canvas_cost", lambda *a: announced.append(canvas_cost(*a)) or announced[-1])
    generate_physical_area(model, request, tmp_path / "out")

    assert announced == [estimate]  # the run priced the same counts, with the kept speed
    assert estimate.windows == seen["windows"] and estimate.calls == 2
    assert (estimate.encoder_tiles, estimate.encoder_latents) == tuple(seen["encoder"])
    assert (estimate.decoder_tiles, estimate.decoder_latents) == tuple(seen["decoder"])
    assert estimate.encoder_tiles > 3 and estimate.decoder_tiles > 2  # the 10 m canvases take several tiles
    opened = [role for role, _ in model.loaded_vaes()]
    assert estimate.vaes_opened == (opened.count("encoder"), opened.count("decoder")) == (3, 2)
    # the denoiser is priced at the batch the run calls it with
    batch = max(seen["batches"])
    assert batch == model.max_batch and estimate.speed["window"] == seconds_per_window(model, batch)
    encoder, open_encoder = seconds_per_vae_latent(model, "encoder", "S2L2A_B02_B03_B04_B08")
    decoder, open_decoder = seconds_per_vae_latent(model, "decoder", "DEM_DEM")
    stages = estimate.stage_seconds
    assert stages["denoising"] == pytest.approx(seen["windows"] * estimate.speed["window"])
    assert stages["encoding"] == pytest.approx(seen["encoder"][1] * encoder + 3 * open_encoder)
    assert stages["decoding"] == pytest.approx(seen["decoder"][1] * decoder + 2 * open_decoder)
    assert estimate.seconds == pytest.approx(sum(stages.values()))
    assert f"{estimate.encoder_tiles + estimate.decoder_tiles} VAE tiles" in estimate.describe()


def test_memory_counts_the_graphs_the_run_opens_and_each_vae_sessions_activations(tmp_path, monkeypatch,
                                                                                   copgen_model_dir):
    """The model folder holds 20 VAE graphs; a run opens the denoiser its plan names and the VAEs
    of its conditions and outputs, each session keeping its own activations."""
    monkeypatch.setenv(speed.CACHE_DIR_ENV, str(tmp_path / "cache"))
    model = load(copgen_model_dir, "cpu")

    def peak(generate, files=None):
        request = GenerationRequest(generate=generate, conditions=(PhysicalConditionSpec("s2l2a", str(S2_TILE)),),
                                    steps=2, family="cop-gen")
        if files is not None:
            monkeypatch.setitem(model.info, "files", files)
        return canvas_cost(model, request, ModelLattice.from_grid(resolve_grid(request))).peak_bytes

    base = peak(["S1RTC_vh_vv"])
    files = model.info["files"]
    grown = lambda name: {**files, name: {**files[name], "bytes": files[name]["bytes"] + 10 ** 12}}  # noqa: E731
    assert peak(["S1RTC_vh_vv"], grown("vae_decoder.LULC_LULC.onnx")) == base  # never opened
    assert peak(["S1RTC_vh_vv"], grown("vae_encoder.S1RTC_vh_vv.onnx")) == base
    assert peak(["S1RTC_vh_vv"], grown("vae_decoder.S1RTC_vh_vv.onnx")) == base + 10 ** 12
    assert peak(["S1RTC_vh_vv"], grown("vae_encoder.S2L2A_B02_B03_B04_B08.onnx")) == base + 10 ** 12
    denoiser = Path(model.plan.graphs["denoiser"]).name
    assert peak(["S1RTC_vh_vv"], grown(denoiser + ".data")) == base + 10 ** 12
    other = "denoiser.int8.onnx.data" if denoiser == "denoiser.onnx" else "denoiser.onnx.data"
    if other in files:
        assert peak(["S1RTC_vh_vv"], grown(other)) == base
    monkeypatch.setitem(model.info, "files", files)
    # a second output of the same resolution adds its decoder graph and its own session's activations
    lulc = sum(files.get(name, {}).get("bytes", 0)
               for name in ("vae_decoder.LULC_LULC.onnx", "vae_decoder.LULC_LULC.onnx.data"))
    added = peak(["LULC_LULC", "S1RTC_vh_vv"]) - base
    assert added > lulc + 6 * 4 * 8 * 30 * 30  # graph, canvases and more: the decoder's feature maps
