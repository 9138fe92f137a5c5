"""``python -m plugin convert``: official checkpoints -> a model folder of ONNX graphs."""

import sys

from ..engine.precision import GRAPH_PRECISIONS


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "convert",
        help="convert the official PyTorch checkpoints to ONNX",
        description=(
            "Convert the COP-GEN-Beta denoiser and the KL-f8 autoencoder checkpoints (.pth or "
            ".safetensors; latent-diffusion or diffusers layout) into a model folder. "
            "Re-running with the same checkpoints and options does nothing."
        ),
    )
    parser.add_argument("--denoiser", required=True, metavar="FILE", help="denoiser checkpoint")
    parser.add_argument("--vae", required=True, metavar="FILE", help="autoencoder checkpoint")
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
        heads=args.heads,
        precision=args.precision,
        progress=progress,
    )
    print(out)
    return 0
