import os
import shutil
import sys
import tempfile
from pathlib import Path

# Everything a run writes outside its tmp_path folders (QGIS's profile and settings, XDG caches,
# Qt's runtime folder, temporary files of QGIS, GDAL and pytest itself) goes into one private
# folder, removed when the run ends: the user's HOME and /tmp names are never touched.
os.environ.setdefault("PYENV_ROOT", str(Path.home() / ".pyenv"))  # pyenv's shims find it by HOME
PRIVATE = Path(tempfile.mkdtemp(prefix="copgen-tests-"))
for variable, folder in (
    ("HOME", "home"),
    ("XDG_DATA_HOME", "home/.local/share"),
    ("XDG_CONFIG_HOME", "home/.config"),
    ("XDG_CACHE_HOME", "home/.cache"),
    ("XDG_RUNTIME_DIR", "runtime"),
    ("TMPDIR", "tmp"),
):
    os.environ[variable] = str(PRIVATE / folder)
    (PRIVATE / folder).mkdir(mode=0o700, parents=True, exist_ok=True)
tempfile.tempdir = os.environ["TMPDIR"]  # gettempdir() may have been asked before this


def pytest_unconfigure(config):
    shutil.rmtree(PRIVATE, ignore_errors=True)


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
def copgen_model_dir(tmp_path_factory):
    """The tiny COP-GEN reference checkpoints (official layout, random weights) converted once."""
    from plugin.engine.convert import convert

    root = SHARED / "fixtures" / "copgen_reference"
    return convert(root / "denoiser_tiny.pth", None, tmp_path_factory.mktemp("copgen_tiny") / "model",
                   heads=TINY_HEADS, vae_dir=root / "vae")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return _convert_tiny(tmp_path_factory, "fp32")


@pytest.fixture(scope="session")
def tiny_model_dir_fp16(tmp_path_factory):
    return _convert_tiny(tmp_path_factory, "fp16")
