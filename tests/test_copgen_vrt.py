"""`generate --vrt` with a COP-GEN model on a real S2 L2A tile: a sensor's groups as one VRT at
10 m in band order, referencing the native-resolution COGs (no pixels copied), listed among the
outputs; --vrt with nothing to stack, or with a Beta model, refused in one line, nothing written."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from test_copgen_generate import BANDS, tile  # noqa: F401 (module fixtures)

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(300)
S2_ORDER = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")


def generate(model, condition, out, *extra):
    return subprocess.run([sys.executable, "-m", "plugin", "generate", "--model", str(model), "--condition",
                           condition, "--steps", "2", "--seed", "3", "--out", str(out), *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=280)


def test_vrt_stacks_the_s2l1c_groups_at_10_m_in_band_order(copgen_model_dir, tile, tmp_path):
    done = generate(copgen_model_dir, f"s2l2a={tile}:{BANDS}", tmp_path, "--generate", "s2l1c,dem", "--vrt")
    assert done.returncode == 0, done.stderr
    vrt = tmp_path / "copgen_seed3_s2l1c.vrt"
    assert str(vrt) in done.stdout.splitlines()
    assert vrt.stat().st_size < 20_000 and not list(tmp_path.glob("*dem*.vrt"))  # references only
    with rasterio.open(vrt) as stack, rasterio.open(tmp_path / "copgen_seed3_S2L1C_B02_B03_B04_B08.tif") as ten, \
            rasterio.open(tmp_path / "copgen_seed3_S2L1C_B01_B09_B10.tif") as sixty:
        assert stack.descriptions == S2_ORDER and stack.res == (10, 10) and stack.bounds == ten.bounds
        assert stack.dtypes == ("uint16",) * 13 and stack.nodata == 0
        assert np.array_equal(stack.read(4), ten.read(ten.descriptions.index("B04") + 1))
        b01 = sixty.read(1)  # nearest neighbour: each 60 m pixel is 6 x 6 pixels at 10 m
        assert np.array_equal(stack.read(1)[::6, ::6], b01)
        assert np.array_equal(stack.read(1), np.repeat(np.repeat(b01, 6, 0), 6, 1))
        # what the group files say of themselves all, the stack says too: synthetic, the model, the seed
        tags = stack.tags()
        assert tags["synthetic"] == "true" and tags["seed"] == "3" and tags["sensor"] == "s2l1c", tags
        assert tags["model"] == ten.tags()["model"] and "modality" not in tags  # (each group's own)


def test_vrt_with_nothing_to_stack_is_one_line_and_writes_nothing(copgen_model_dir, tile, tmp_path):
    done = generate(copgen_model_dir, f"s2l2a={tile}:{BANDS}", tmp_path / "out", "--generate", "dem", "--vrt")
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1 and "--vrt" in lines[0] and "s2l2a" in lines[0], done.stderr
    assert not (tmp_path / "out").exists()


def test_vrt_of_a_beta_model_is_refused(tiny_model_dir, tile, tmp_path):  # noqa: F811
    done = generate(tiny_model_dir, f"s2_l2a={tile}:B04,B03,B02", tmp_path / "out", "--generate", "dem", "--vrt")
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1 and "--vrt" in lines[0] and "COP-GEN-Beta" in lines[0], done.stderr
    assert not (tmp_path / "out").exists()
