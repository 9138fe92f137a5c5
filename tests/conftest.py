import os
import sys
from pathlib import Path

# ../shared is read-only input: GDAL (in this process, QGIS and qgis_process children) must not
# write .aux.xml statistics beside the rasters it opens there.
os.environ["GDAL_PAM_ENABLED"] = "NO"

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "copgen_beta_reference"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def fixtures_dir():
    return FIXTURES


@pytest.fixture(scope="session")
def expected():
    import numpy as np

    return dict(np.load(FIXTURES / "expected.npz"))


@pytest.fixture(scope="session")
def shared_dir():
    return SHARED


# The tiny reference checkpoints converted into model folders (2 heads, like the fixtures).
TINY_HEADS = 2


def _convert_tiny(tmp_path_factory, precision):
    from plugin.engine.convert import convert

    out = tmp_path_factory.mktemp(f"tiny_model_{precision}") / "model"
    return convert(
        FIXTURES / "denoiser_tiny.pth",
        FIXTURES / "vae_tiny.pth",
        out,
        heads=TINY_HEADS,
        precision=precision,
    )


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return _convert_tiny(tmp_path_factory, "fp32")


@pytest.fixture(scope="session")
def tiny_model_dir_fp16(tmp_path_factory):
    return _convert_tiny(tmp_path_factory, "fp16")
