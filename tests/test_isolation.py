"""The test suite writes only into folders of its own: a run started with some HOME and TMPDIR
leaves both as they were (no QGIS profile, no XDG folders, no /tmp names left behind)."""

import os
import subprocess
import sys

import pytest

from qgis_support import REPO


def tree(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.timeout(240)
def test_a_qgis_test_run_leaves_home_and_tmp_as_they_were(tmp_path):
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    (home / "notes.txt").write_text("the user's own file\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("XDG_")}
    env.update(HOME=str(home), TMPDIR=str(tmp), QT_QPA_PLATFORM="offscreen")
    # One test that starts a QgsApplication and Processing, as the suite's QGIS tests do.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_qgis_plugin.py::test_table_fields_are_made_from_qmetatype"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert tree(home) == ["notes.txt"]
    assert tree(tmp) == []
