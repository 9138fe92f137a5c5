"""``python -m plugin convert``: official checkpoints -> a model folder of ONNX graphs."""

import sys

from ..engine.precision import GRAPH_PRECISIONS


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "convert",
        help="convert the official PyTorch checkpoints to ONNX",
        description=(
            "Convert official checkpoints (.pth or .safetensors) into a model folder; the model "
            "family is read from the denoiser. COP-GEN-Beta: the denoiser and its KL-f8 "
            "autoencoder (--vae FILE, latent-diffusion or diffusers layout). COP-GEN: the "
            "denoiser and the folder of its ten VAEs (--vae-dir DIR, the copgen-vaes layout "
            "<folder>/model-50-ema.pth). Re-running with the same checkpoints and options does nothing."
        ),
    )
    parser.add_argument("--denoiser", required=True, metavar="FILE", help="denoiser checkpoint")
    vaes = parser.add_mutually_exclusive_group(required=True)
    vaes.add_argument("--vae", metavar="FILE", help="COP-GEN-Beta: the autoencoder checkpoint")
    vaes.add_argument("--vae-dir", metavar="DIR", help="COP-GEN: the folder of its ten VAE folders")
    parser.add_argument("--out", required=True, metavar="DIR", help="model folder to write")
    parser.add_argument(
        "--heads",
        type=int,
        default=16,
        help="attention heads of the denoiser; not stored in the weights (default: 16)",
    )
    parser.add_argument(
        "--precision",
        choices=GRAPH_PRECISIONS,
        default="fp32",
        help=(
            "fp32 (CPU) or fp16 (GPU) weights and arithmetic; int8: fp32 plus a faster, "
            "approximate int8 denoiser for the CPU (default: fp32)"
        ),
    )
    parser.set_defaults(func=run)


def run(args):
    from ..engine.convert import convert

    def progress(done, total, message):
        print(f"[{done}/{total}] {message}", file=sys.stderr)

    out = convert(
        args.denoiser,
        args.vae,
        args.out,
        vae_dir=args.vae_dir,
        heads=args.heads,
        precision=args.precision,
        progress=progress,
    )
    print(out)
    return 0
