#!/usr/bin/env python3
"""The README's picture of COP-GEN in QGIS: docs/screenshots/copgen-qgis.png.

    python scripts/screenshot_copgen.py [--out docs/screenshots/copgen-qgis.png] [--model-dir DIR]

Runs tests/desktop_copgen.py (a real QGIS under Xvfb, in a throwaway profile): Raster >
COP-GEN-Beta > Generate… with a COP-GEN model on the real Sentinel-2 L2A tile, Run clicked, the
styled layers loaded; then the main window is saved, the land cover shown with its legend. The
model is the tiny one of the tests with random weights (``--model-dir``, default: the shared
test checkpoints converted on the fly), so the layers are a layout demo, never a result: their
group in the picture says so.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY_HEADS = 2  # the shared tiny COP-GEN checkpoints (tests/conftest.py)


def tiny_model(folder):
    """The shared tiny COP-GEN checkpoints (official layout, random weights) converted into ``folder``."""
    sys.path.insert(0, str(REPO))
    from plugin.engine.convert import convert

    root = REPO.parent / "shared" / "fixtures" / "copgen_reference"
    return convert(root / "denoiser_tiny.pth", None, Path(folder) / "model", heads=TINY_HEADS, vae_dir=root / "vae")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots" / "copgen-qgis.png"))
    parser.add_argument("--model-dir", help="a converted COP-GEN model folder (default: the tiny test model)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="copgen-screenshot-") as work:
        model = Path(args.model_dir) if args.model_dir else tiny_model(work)
        report = Path(work) / "report.json"
        subprocess.run([sys.executable, str(REPO / "tests" / "desktop_copgen.py"), "--work", str(Path(work) / "run"),
                        "--model-dir", str(model), "--report", str(report), "--screenshot", str(Path(args.out).resolve())],
                       check=True, stdout=subprocess.DEVNULL)
        checks = json.loads(report.read_text(encoding="utf-8"))
    if checks["errors"] or "screenshot" not in checks["checks"]:
        raise SystemExit(f"no screenshot: {checks['errors']}")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
