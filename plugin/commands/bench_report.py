"""What ``python -m plugin bench`` prints: the report table and the machine it ran on."""

import os
import platform
from pathlib import Path


# What the runs are: the fast preset, the solver step counts, the translation timed, a cell's latents
PRESET = {"precision": "fast", "solver": "dpm-solver-fast", "steps": 20}
SOLVER_STEPS = (10, 20, 26, 50)  # docs/solvers.md: 20 or 26 are the recommended short runs
TRANSLATION = {"condition": "s1_rtc", "generate": "s2_l2a"}
CELL_LATENTS = 134


def format_report(report):
    machine = report["machine"]
    lines = [
        f"machine: {machine['cpu']}, {machine['cores']} cores, load {machine['load_before']}"
        f" before / {machine['load_after']} after; onnxruntime {machine['onnxruntime']}",
        f"instruction sets: {machine.get('isa', 'not recorded')}",
        f"model: {report['model']}; {'quick' if report['quick'] else 'full'} run",
        *(f"{r['name']}: {note}" for r in report["configurations"] for note in r.get("notes", ())),
        "",
        f"{'config':10} {'call s':>13} {'encode s':>9} {'decode s':>9} {'load s':>7} "
        f"{'first tile s':>16} {'RSS GiB':>8} {'50-step tile s':>20} {'preset tile s':>20}",
    ]
    for r in report["configurations"]:
        call, tile = r["denoiser_call_s"], r["tile"]
        preset = _figure(r["preset"]) if "preset" in r else "-"
        lines.append(
            f"{r['name']:10} {call['min']:6.2f}/{call['median']:6.2f} "
            f"{r['vae_encode_s']['min']:9.2f} {r['vae_decode_s']['min']:9.2f} {r['load_s']:7.1f} "
            f"{tile['measured_s']:7.1f} ({tile['steps']:2d} st) {_number(tile['peak_rss_gib']):>8} "
            f"{_figure(r['tile_50_steps']):>20} {preset:>20}"
        )
        if tile["gpu_memory_mib"] is not None:
            lines.append(
                f"{'':10} GPU memory after the first tile: {tile['gpu_memory_mib']:.0f} MiB"
            )
    lines += [
        "",
        "call s: min/median of one denoiser call (batch 1, 4 modalities); tiles: 1-to-1 "
        f"translation ({TRANSLATION['condition']} -> {TRANSLATION['generate']}: encode, sample, "
        "decode); first tile: measured in the fresh process, RSS: its peak; (m) measured, "
        "(x) extrapolated from the minimums: encode + steps x call + decode",
        f"preset: {PRESET['precision']}, {PRESET['solver']}, {PRESET['steps']} steps",
        "",
        f"{'config':10} {'tiles':>5} {'windows':>7} {'step s':>8} {'s/tile/step':>11} "
        f"{'decode s':>9}   (one canvas step, measured; decode (m) or (x) windows x decode)",
    ]
    for r in report["configurations"]:
        for a in r["area"]:
            how = "m" if a["decode_how"] == "measured" else "x"
            lines.append(f"{r['name']:10} {a['tiles']:5d} {a['windows']:7d} {a['step_s']:8.2f} "
                         f"{a['step_s'] / a['tiles']:11.2f} {a['decode_s']:8.1f}{how}")
    lines += ["", f"{'config':10} {'tiling':18} {'steps':>5} {'windows/step':>12} {'x area':>7} "
              f"{'VAE tiles':>9} {'x area':>7} {'s/step':>8} {'cell min':>9}   (one Major TOM cell, "
              f"{CELL_LATENTS} x {CELL_LATENTS} latents; (m) measured, (x) extrapolated)"]
    for r in report["configurations"]:
        for c in r.get("cell", []):
            how = "m" if c["step_how"].startswith("measured") else "x"
            lines.append(
                f"{r['name']:10} {c['tiling']:18} {c['steps']:5d} {c['windows_per_step']:12.1f} "
                f"{c['windows_per_step'] / c['area_tiles']:7.2f} {c['vae_tiles']:9d} "
                f"{c['vae_area_tiles'] / c['area_tiles']:7.2f} {c['step_s']:7.1f}{how} {c['cell_s'] / 60:9.1f}")
    lines += ["", f"{'config':10} {'solver':16} " + " ".join(f"{f'{n} steps':>10}" for n in SOLVER_STEPS)
              + "   (s per 1-to-1 tile: encode + steps x call + solver (measured) + decode)"]
    for r in report["configurations"]:
        fixed = r["vae_encode_s"]["min"] + r["vae_decode_s"]["min"]
        for solver, overhead in report["solver_overhead_s"].items():
            tile = [fixed + n * r["denoiser_call_s"]["min"] + overhead[n] for n in SOLVER_STEPS]
            lines.append(f"{r['name']:10} {solver:16} " + " ".join(f"{t:10.1f}" for t in tile))
    lines.append("")
    for r in report["configurations"]:
        for name, error in r.get("error_vs_fp32", {}).items():
            lines.append(f"{r['name']} vs fp32-cpu, {name}: RMS {error['rms']:.4f}, "
                         f"max {error['max_over_std']:.4f} of the std")
    return "\n".join(lines)


def _number(value):
    return "-" if value is None else f"{value:.2f}"


def _figure(figure):
    how = "m" if figure["how"] == "measured" else "x"
    return f"{figure['seconds']:.1f} ({figure['steps']} st, {how})"


def machine(load_before):
    import onnxruntime

    from ..engine.cpu_features import isa_summary
    from ..engine.runtime import physical_cores

    return {
        "cpu": _cpu_name(),
        "isa": isa_summary(),
        "cores": physical_cores() or os.cpu_count(),
        "load_before": load_before,
        "load_after": load_average(),
        "onnxruntime": onnxruntime.__version__,
        "providers": onnxruntime.get_available_providers(),
        "python": platform.python_version(),
    }


def load_average():
    """The 1, 5 and 15 minute load averages (None where the OS has none, as on Windows)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
