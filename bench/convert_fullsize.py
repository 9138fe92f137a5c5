"""Full-size conversion benchmark: wall time and peak memory of `python -m plugin convert`.

Writes random-weight checkpoints in the official layouts at the real sizes (the COP-GEN-Beta
denoiser: embed 1024, 10 in-blocks + mid + 10 out-blocks, 4 modalities, ~287 M parameters;
the Stable Diffusion KL-f8 VAE: ch 128, ch_mult 1,2,4,4, 2 res blocks), then converts them in
a child process so its peak RSS is the conversion's alone. Checkpoints are kept in --work and
reused by later runs.

    .venv/bin/python bench/convert_fullsize.py [--precision fp32|fp16] [--work DIR]
"""

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from plugin.engine.checkpoint_write import save_pth  # noqa: E402
from plugin.engine.denoiser_layout import DenoiserConfig  # noqa: E402
from plugin.engine.denoiser_layout import expected_shapes as denoiser_shapes  # noqa: E402
from plugin.engine.vae_layout import VaeConfig  # noqa: E402
from plugin.engine.vae_layout import expected_shapes as vae_shapes  # noqa: E402

DENOISER = DenoiserConfig(
    embed_dim=1024,
    num_in_blocks=10,
    patch_size=2,
    in_chans=4,
    img_size=32,
    num_modalities=4,
    mlp_hidden=4096,
    num_heads=16,
)
VAE = VaeConfig(
    ch=128,
    ch_mult=(1, 2, 4, 4),
    num_res_blocks=2,
    z_channels=4,
    embed_dim=4,
    in_channels=3,
    out_ch=3,
    has_mid_attn=True,
)


def random_state(shapes, seed):
    """Small random weights; norm scales near 1 so activations stay in range."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in shapes.items():
        values = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
        if "norm" in key and key.endswith(".weight"):
            values += np.float32(1.0)
        state[key] = values
    return state


def write_checkpoint(path, shapes, seed):
    if path.exists():
        return
    print(f"writing {path} ...", flush=True)
    save_pth(random_state(shapes, seed), path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=("fp32", "fp16"), default="fp32")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "copgen_bench")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    denoiser = args.work / "denoiser_fullsize.pth"
    vae = args.work / "vae_fullsize.pth"
    write_checkpoint(denoiser, denoiser_shapes(DENOISER), seed=0)
    write_checkpoint(vae, vae_shapes(VAE), seed=1)
    parameters = sum(int(np.prod(s)) for s in denoiser_shapes(DENOISER).values())
    print(f"denoiser parameters: {parameters / 1e6:.1f} M ({denoiser.stat().st_size / 1e9:.2f} GB)")

    out = args.work / f"model_{args.precision}"
    command = [
        sys.executable, "-m", "plugin", "convert",
        "--denoiser", str(denoiser), "--vae", str(vae), "--out", str(out),
        "--heads", str(DENOISER.num_heads), "--precision", args.precision,
    ]
    if out.exists():  # a re-run would be a no-op; time a real conversion
        shutil.rmtree(out)
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(f"convert {args.precision}: wall {wall:.1f} s, peak RSS {peak_kib / 2**20:.2f} GiB")
    for path in sorted(out.iterdir()):
        print(f"  {path.name:22s} {path.stat().st_size / 1e6:10.1f} MB")


if __name__ == "__main__":
    main()
