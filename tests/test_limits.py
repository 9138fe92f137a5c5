"""The limits a user can raise cover a run's whole cost (area, samples x steps as time, and
memory): the real commands refuse a run whose estimate is beyond one, in one line naming the flag
that raises it and the estimated figure, before any condition is read, any canvas allocated or
anything written."""

import subprocess
import sys

import pytest
from _faults import REPO, error_line
from _geo_helpers import S2_TILE

# Runs the CLI as its child and prints the child's peak resident memory (KiB) last on stdout.
_PEAK = ("import resource, subprocess, sys; "
         "code = subprocess.call([sys.executable, '-m', 'plugin', *sys.argv[1:]]); "
         "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")


def _run(args, timeout=120):
    """(CompletedProcess, peak resident memory of ``python -m plugin ARGS`` in MiB)."""
    import os

    result = subprocess.run([sys.executable, "-c", _PEAK, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                            timeout=timeout, env={**os.environ, "GDAL_PAM_ENABLED": "NO"})
    peak = int(result.stdout.split("PEAK_KIB")[-1]) / 1024
    return result, peak


def _generate(tmp_path, model, *extra):
    return ["generate", "--model", model, "--generate", "dem", "--condition", f"s2_l2a={S2_TILE}",
            "--out", tmp_path / "out", "--device", "cpu", *extra]


@pytest.mark.timeout(150)
def test_absurd_samples_are_refused_by_the_time_limit_without_allocating(tmp_path, tiny_model_dir):
    result, peak = _run(_generate(tmp_path, tiny_model_dir, "--samples", 10 ** 9))
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("error: --max-hours:") and "above the limit of 24 h" in line
    assert "denoiser windows" in line  # the estimate's figures are named
    # 10^9 samples of even a one-byte latent would be a GiB; the refusal holds nothing per sample
    assert peak < 1024, peak
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(150)
def test_time_and_memory_limits_refuse_before_anything_is_written_and_can_be_raised(tmp_path, tiny_model_dir):
    result, _ = _run(_generate(tmp_path, tiny_model_dir, "--steps", 4, "--max-hours", 1e-7))
    assert result.returncode == 1
    assert error_line(result).startswith("error: --max-hours:")
    result, _ = _run(_generate(tmp_path, tiny_model_dir, "--steps", 4, "--max-memory-gib", 0.001))
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("error: --max-memory-gib:") and "GiB of memory, above the limit of 0.001 GiB" in line
    assert not (tmp_path / "out").exists()
    # the defaults (24 h, this machine's RAM) let a small run through
    result, _ = _run(_generate(tmp_path, tiny_model_dir, "--steps", 2))
    assert result.returncode == 0, result.stderr
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["copgen_seed0_dem.tif"]


@pytest.mark.timeout(120)
def test_prepare_refuses_an_area_beyond_its_limit_naming_the_flag(tmp_path):
    out = tmp_path / "out" / "r.tif"
    args = ["prepare", "--modality", "s2_l2a", "--input", S2_TILE, "--out", out]  # padded to 256 x 256 px at 10 m
    result, _ = _run([*args, "--max-area-km2", 4])
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("error: --max-area-km2:") and "6.6 km² (256 x 256 px at 10 m)" in line and "above the limit of 4 km²" in line
    assert not out.parent.exists()
    result, _ = _run(args)  # within the default
    assert result.returncode == 0, result.stderr
    assert out.is_file()


def _cells(n):
    """``n`` Major TOM cell names next to 282D_485L."""
    return ",".join(f"{282 + k // 50}D_{485 + k % 50}L" for k in range(n))


@pytest.mark.timeout(240)
def test_dataset_checks_each_cell_and_the_whole_run_against_the_time_limit(tmp_path, tiny_model_dir):
    def dataset(cells, *extra):
        out = tmp_path / "out"
        result, _ = _run(["dataset", "--model", tiny_model_dir, "--generate", "dem", "--cells", cells, "--out", out,
                          "--device", "cpu", "--cell-size-px", 256, "--steps", 2, *extra], timeout=200)
        return result, out

    result, out = dataset("282D_485L", "--max-hours", 1e-9)
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("error: --max-hours: each cell would take") and "above the limit of 1e-09 h" in line
    assert not out.exists()
    # one cell costs well under a minute on the tiny model; a thousand of them on one worker do not
    result, out = dataset(_cells(1000), "--max-hours", 1 / 60, "--workers", 1)
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("error: --max-hours: the 1000 cells on 1 worker would take about")
    assert not out.exists()
    result, out = dataset("282D_485L", "--max-memory-gib", 0.001)
    assert result.returncode == 1
    assert error_line(result).startswith("error: --max-memory-gib: each cell would need about")
    assert not out.exists()


@pytest.mark.timeout(300)
def test_cop_gen_runs_are_held_against_the_memory_limit_before_reading(tmp_path, copgen_model_dir):
    def generate(*extra):
        return _run(["generate", "--model", copgen_model_dir, "--generate", "s1rtc", "--condition",
                     f"s2l2a={S2_TILE}:B04,B03,B02", "--steps", 2, "--out", tmp_path / "out", *extra], timeout=280)

    result, peak = generate("--samples", 10 ** 9, "--max-hours", 10 ** 12)  # time is held apart below
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("error: --max-memory-gib:") and "denoiser windows" in line
    assert peak < 1024, peak
    # the condition is not even read: its three bands would not do for s2l2a
    result, _ = generate("--max-memory-gib", 0.0001)
    assert result.returncode == 1
    assert error_line(result).startswith("error: --max-memory-gib:")
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(300)
def test_cop_gen_runs_are_priced_in_time_said_first_and_held_against_the_time_limit(tmp_path, copgen_model_dir):
    """COP-GEN's windows priced with one window timed on this machine (kept in the speed cache):
    the estimate is the first line, and a run beyond --max-hours is refused before it reads."""
    def generate(out, *extra):
        return _run(["generate", "--model", copgen_model_dir, "--generate", "s1rtc", "--condition",
                     f"s2l2a={S2_TILE}", "--steps", 2, "--out", out, *extra], timeout=280)

    result, _ = generate(tmp_path / "small")
    assert result.returncode == 0, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("estimate: about ") and "s per window here" in first and "denoiser windows" in first
    # then the bar names each stage (RunProgress, as for COP-GEN-Beta) and ends full
    stages = [line.split(" [")[0].split(" · ")[0] for line in result.stderr.splitlines()[1:]]
    assert [s for s in dict.fromkeys(stages) if s.split(" ")[0] in ("encoding", "denoising", "decoding")] == [
        "encoding S2L2A_B01_B09", "encoding S2L2A_B02_B03_B04_B08", "encoding S2L2A_B05_B06_B07_B11_B12_B8A",
        "denoising", "decoding S1RTC_vh_vv"], result.stderr
    last = result.stderr.splitlines()[-1]
    total = last.rsplit("/", 1)[-1]
    assert last.endswith(f"100% {total}/{total}"), result.stderr
    result, _ = generate(tmp_path / "out", "--samples", 10 ** 7, "--max-memory-gib", 10 ** 12)
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("error: --max-hours:") and "above the limit of 24 h" in line, line
    assert not (tmp_path / "out").exists()
