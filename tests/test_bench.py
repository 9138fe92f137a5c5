"""`python -m plugin bench` runs end to end on a converted folder (the tiny model here; the
figures that matter come from full-size random weights, never from tests)."""

import json
import subprocess
import sys
from pathlib import Path

from plugin.engine.solvers import SOLVERS
from plugin.engine.tiling import DEFAULT_TILING

REPO = Path(__file__).resolve().parents[1]


def test_bench_quick_reports_calls_tiles_areas_cells_and_every_solver(tiny_model_dir, tmp_path):
    report_file = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "plugin", "bench", "--quick", "--model", str(tiny_model_dir),
         "--json", str(report_file)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(report_file.read_text())
    [config] = report["configurations"]
    assert config["name"] == "fp32-cpu" and config["provider"] == "CPUExecutionProvider"
    assert 0 < config["denoiser_call_s"]["min"] <= config["denoiser_call_s"]["median"]
    assert config["tile"]["peak_rss_gib"] > 0
    assert [area["tiles"] for area in config["area"]] == [1, 4]
    assert sorted(report["solver_overhead_s"]) == sorted(SOLVERS)
    for solver in SOLVERS:
        assert any(line.startswith("fp32-cpu") and f" {solver} " in line for line in result.stdout.splitlines())
    # one Major TOM cell, today's tiling beside the default
    today, default = config["cell"]
    assert (today["tiling"], default["tiling"]) == ("overlap:16", DEFAULT_TILING)
    assert today["windows_per_step"] == 64 and today["vae_tiles"] == 64
    assert default["windows_per_step"] / default["area_tiles"] <= 1.65
    assert default["vae_area_tiles"] / default["area_tiles"] <= 1.3
    assert default["cell_s"] < today["cell_s"]
    assert any(line.startswith("fp32-cpu") and DEFAULT_TILING in line for line in result.stdout.splitlines())
