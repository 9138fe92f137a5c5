"""`python -m plugin bench` from an installed plugin (no bench/ or tests/ folder beside it)."""

import json
import subprocess
import sys

import pytest

from qgis_support import PLUGIN_NAME, install_plugin


@pytest.mark.timeout(600)
def test_bench_runs_from_an_installed_plugin(tmp_path, tiny_model_dir):
    plugin_dir = install_plugin(tmp_path / "home")
    assert not (plugin_dir / "bench").exists() and not (plugin_dir / "tests").exists()
    assert not (plugin_dir / "plugin" / "engine" / "checkpoint_write.py").exists()  # test-only code stays out
    assert (plugin_dir / "plugin" / "benchmarks" / "weights.py").is_file()  # random full-size weights
    report = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", f"{PLUGIN_NAME}.plugin", "bench", "--quick", "--model", str(tiny_model_dir),
         "--json", str(report)],
        cwd=plugin_dir.parent, capture_output=True, text=True, timeout=540,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(report.read_text())
    names = [config["name"] for config in figures["configurations"]]
    assert "fp32-cpu" in names
    fp32 = figures["configurations"][names.index("fp32-cpu")]
    assert fp32["denoiser_call_s"] and fp32["tile"]["steps"] == 2  # --quick: 2-step tiles, measured
