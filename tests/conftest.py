import sys
from pathlib import Path

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
