"""Seam tests that can fail: the Gaussian-field oracle (bench/gaussian_oracle.py) as the denoiser,
so that only the window layout can make seams; and the VAE's tiles against a whole decode."""

import numpy as np
import onnxruntime as ort
import pytest
import rasterio

from bench.gaussian_oracle import GaussianFieldOracle, oracle_graph, write_oracle_folder
from plugin.analysis.seams import blind_seam_score, decoder_seam_excess, layout_seam_score
from plugin.engine import load
from plugin.engine.canvas import canvas_streams, sample_canvas, to_uint8
from plugin.engine.vae_canvas import decode_canvas
from plugin.engine.tiling import DEFAULT_TILING, Layout, lattice, parse_tiling, vae_layout

SIZE = 134  # a whole Major TOM cell
STEPS = 20


def sample_oracle(tiling, length, seed, size=SIZE, steps=STEPS):
    oracle = GaussianFieldOracle(length)
    return sample_canvas(oracle.denoise, [0], [], np.zeros((0, 1, 4, size, size), np.float32), (1, size, size),
                         steps, "dpm-solver-fast", tiling, streams=canvas_streams(seed), max_windows=256)[0, 0]


def scores(spec, length, seeds=(0, 1)):
    tiling = parse_tiling(spec)
    at_layout, blind = [], []
    for seed in seeds:
        latents = sample_oracle(tiling, length, seed)
        at_layout.append(layout_seam_score(latents, tiling, SIZE, SIZE, STEPS))
        blind.append(blind_seam_score(latents))
    return float(np.mean(at_layout)), float(np.mean(blind))


@pytest.mark.parametrize("length", [3, 12])
def test_default_tiling_shows_no_seams_where_independent_tiles_do(length):
    default, default_blind = scores(DEFAULT_TILING, length)
    today, today_blind = scores("overlap:16", length)
    independent, independent_blind = scores("overlap:0", length)
    print(f"l={length}: default {default:.3f}/{default_blind:.3f}, overlap 16 {today:.3f}/{today_blind:.3f}, "
          f"independent {independent:.3f}/{independent_blind:.3f}")
    # the test can fail: independent tiles show their grid to both detectors
    assert independent > 2.0 and independent_blind > 2.5
    # the default: no visible step at its boundaries, as today's overlap 16
    assert default <= max(today, 1.0) + 0.05
    assert default_blind < 1.6 and default_blind <= today_blind + 0.15


def test_pure_shifting_is_not_enough():
    """Shifted windows without overlap leave seams the oracle sees (the issue's 1.70 / 2.06)."""
    shifted, blind = scores("shifted", 6, seeds=(0,))
    assert shifted > 1.3 and blind > 1.6


def test_oracle_graph_equals_the_numpy_oracle():
    session = ort.InferenceSession(oracle_graph(6).SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    latents = rng.standard_normal((3, 4, 4, 32, 32), dtype=np.float32)
    timesteps = np.array([[999, 0, 0, 0], [500, 500, 0, 0], [20, 0, 7, 1000]], np.float32)
    got = session.run(None, {"latents": latents, "timesteps": timesteps})[0]
    expected = GaussianFieldOracle(6).denoise(latents, timesteps)
    assert np.abs(got - expected).max() / expected.std() < 1e-3


@pytest.fixture(scope="module")
def oracle_model(tmp_path_factory):
    return load(write_oracle_folder(tmp_path_factory.mktemp("oracle") / "model", 8), device="cpu")


@pytest.fixture(scope="module")
def extent():
    """96 x 96 latents (768 px) on the 10 m UTM lattice."""
    left, top = 500000.0, 7000000.0
    return (left, top - 7680, left + 7680, top, "EPSG:32633")


def test_end_to_end_the_oracle_folder_shows_seams_only_for_independent_tiles(oracle_model, extent, tmp_path):
    """generate_area with the ONNX oracle (and a decoder with no spatial context): the written
    GeoTIFF shows the tile grid for independent tiles and no seam for the default tiling."""
    from plugin.engine.request import GenerationRequest
    from plugin.geo.pipeline import generate_area

    results = {}
    for spec in (DEFAULT_TILING, "overlap:0"):
        request = GenerationRequest(generate=["dem"], extent=extent, seed=3, steps=12, tiling=spec)
        [path] = generate_area(oracle_model, request, tmp_path / spec.replace(":", "_").replace("@", "-"))
        with rasterio.open(path) as ds:
            image = ds.read().astype(np.float64)
            assert ds.tags()["tiling"] == spec
        # the decoder paints each latent as an 8 x 8 px block: one pixel per latent is the image
        assert np.array_equal(image, np.repeat(np.repeat(image[:, ::8, ::8], 8, axis=1), 8, axis=2))
        per_latent = image[:, ::8, ::8]
        results[spec] = (layout_seam_score(per_latent, parse_tiling(spec), 96, 96, 12), blind_seam_score(per_latent))
    print(results)
    assert results["overlap:0"][0] > 2.0 and results["overlap:0"][1] > 2.0
    assert results[DEFAULT_TILING][0] < 1.15 and results[DEFAULT_TILING][1] < 1.8


# -- the decoder's tiles ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir):
    """The tiny fixture checkpoint (official VAE structure: ch 32, ch_mult 1,1,2,2, one res block
    per level, mid attention), random weights: a full-size random VAE takes about 3 s per 256 px
    tile on 2 cores, too slow here; bench/seams.py measures the full size."""
    return load(tiny_model_dir, device="cpu")


def smooth_latents(size, length=6, seed=0):
    rng = np.random.default_rng(seed)
    field = rng.standard_normal((4, size, size))
    kernel = np.exp(-0.5 * (np.arange(-3 * length, 3 * length + 1) / length) ** 2)
    for axis in (1, 2):
        field = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, field)
    return (field / field.std()).astype(np.float32)


def decode_with(model, latents, layout):
    height, width = latents.shape[1:]
    image = np.zeros((3, height * 8, width * 8), np.uint8)

    def write(row, col, strip):
        rgb = to_uint8(strip)
        image[:, row:row + rgb.shape[1], col:col + rgb.shape[2]] = rgb

    decode_canvas(model.decode, latents, write, layout=layout)
    return image.astype(np.float64)


def test_decoder_tiles_show_no_more_seam_than_the_old_windows(tiny_model):
    """On 96 x 96 latents, seam excess of a tiled decode over the whole decode (at the tiles'
    boundaries, and with the layout-free detector): the default tiles (2 x 2 of 54 latents
    crossfaded over 12, 1.27x the area) against the old 32-latent windows at overlap 16 (5 x 5,
    2.78x), the previous 2 x 2 tiles of 52 crossfaded over 8 and hard-cut tiles. Measured here:
    see docs/performance.md."""
    size = 96
    latents = smooth_latents(size)
    whole = tiny_model.decode(latents[None])[0] * 255.0
    layouts = {"default": vae_layout(size, size),
               "old": Layout(lattice(size, 16), lattice(size, 16)),
               "previous": vae_layout(size, size, min_overlap=8, max_tile=56, budget=1.0),
               "hard": Layout(lattice(size, 0), lattice(size, 0))}
    excess = {name: decoder_seam_excess(decode_with(tiny_model, latents, layout), whole, layout)
              for name, layout in layouts.items()}
    print("decoder seam excess (at the boundaries, layout-free):",
          {name: f"{a:+.3f} / {b:+.3f}" for name, (a, b) in excess.items()})
    assert excess["hard"][0] > 1.0 and excess["hard"][1] > 1.0  # the measure sees seams
    (default, default_blind), (old, old_blind) = excess["default"], excess["old"]
    # no visible step at the boundaries (the old windows' negative excess is their blur)
    assert default <= max(old, 0.0) + TOLERANCE
    assert default_blind <= old_blind + TOLERANCE
    assert default < excess["previous"][0] - 0.1  # the thin crossfade that was too seamy


# the tiny decoder's own spread between seeds is about 0.03 (docs/performance.md)
TOLERANCE = 0.05
