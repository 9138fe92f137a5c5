"""``python -m plugin models``: list, install, verify and remove converted models."""

import sys

from ..engine.precision import FOLDER_PRECISIONS
from ..engine.provenance import describe_weights
from .offline import local_install_advice
from .progress import ProgressBar

DEFAULT_MODEL = "cop-gen-beta"


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "models",
        help="list, install, verify or remove models",
        description=(
            "Manage converted models: download the official checkpoints (or use local files), "
            "convert them to ONNX and install them under the model folder."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="<action>")
    actions.required = True

    def action(name, help_text, func, with_name=True):
        sub = actions.add_parser(name, help=help_text, description=help_text)
        if with_name:
            sub.add_argument("name", nargs="?", default=DEFAULT_MODEL, help=f"model name (default: {DEFAULT_MODEL})")
        sub.add_argument("--model-dir", metavar="DIR", help="model folder (default: $COPGEN_MODEL_DIR or per-user data folder)")
        sub.add_argument("--registry", metavar="FILE", help="model registry JSON (default: models/registry.json)")
        sub.set_defaults(func=func)
        return sub

    action("list", "list the registry's models and what is installed", _list, with_name=False)
    install = action("install", "download, check, convert and install a model", _install)
    install.add_argument("--precision", choices=FOLDER_PRECISIONS, default="fp32", help="fp32 (CPU) or fp16 (GPU) (default: fp32)")
    install.add_argument("--denoiser", metavar="FILE", help="use this denoiser checkpoint instead of downloading it")
    install.add_argument("--vae", metavar="FILE", help="COP-GEN-Beta: use this autoencoder checkpoint instead of downloading it")
    install.add_argument(
        "--vae-dir", metavar="DIR",
        help="COP-GEN: use the ten VAEs of this folder (the official copgen-vaes layout, "
        "<folder>/model-50-ema.pth) instead of downloading them",
    )
    install.add_argument(
        "--allow-unofficial",
        action="store_true",
        help="install --denoiser/--vae/--vae-dir files whose sha256 differs from the official checkpoints' "
        "(e.g. fine-tuned weights); the model is then marked unofficial",
    )
    install.add_argument(
        "--heads", type=int, metavar="N",
        help="attention heads of an unofficial denoiser (with --allow-unofficial; default: the registry's, 16)",
    )
    verify = action(
        "verify", "re-hash an installed model's files and check its checkpoints against the registry", _verify
    )
    verify.add_argument("--precision", choices=FOLDER_PRECISIONS, default="fp32")
    remove = action("remove", "delete an installed model", _remove)
    remove.add_argument("--precision", choices=FOLDER_PRECISIONS, help="only this precision (default: all, and partial downloads)")


def _manager(args):
    from ..engine.manager import ModelManager

    return ModelManager(model_root=args.model_dir, registry=args.registry)


def _list(args):
    manager = _manager(args)
    print(f"model folder: {manager.model_root}")
    for model in manager.list():
        print(f"{model['name']}: {model['title']}")
        for precision, state in model["precisions"].items():
            status = f"installed ({describe_weights(state['path'])})" if state["installed"] else "not installed"
            print(f"  {precision}: {status}  {state['path']}")
    return 0


def _install(args):
    manager = _manager(args)
    given = (("denoiser", args.denoiser), ("vae", args.vae), ("vae_dir", args.vae_dir))
    local = {role: path for role, path in given if path}
    bar = ProgressBar(sys.stderr)
    try:
        with local_install_advice(manager, args.name, args.precision, args.model_dir, args.registry):
            folder = manager.install(
                args.name, precision=args.precision, progress=bar, local_files=local,
                allow_unofficial=args.allow_unofficial, heads=args.heads,
            )
    finally:
        bar.close()
    print(folder)
    return 0


def _verify(args):
    summary = _manager(args).verify(args.name, precision=args.precision)
    print(f"{summary['model_dir']}: {len(summary['files'])} files match model.json")
    for role, source in summary["sources"].items():
        print(f"  {role}: converted from {source['file']} (sha256 {source['sha256']}): {source['status']}")
    if summary["unofficial"]:
        print("unofficial model: installed with --allow-unofficial from checkpoints that are not the official ones")
    return 0


def _remove(args):
    from ..engine.downloads import KNOWN_HASHES

    for path in _manager(args).remove(args.name, precision=args.precision):
        if path.name == KNOWN_HASHES:
            print(f"forgot the checksums learned at the first download of {args.name} ({path})")
        else:
            print(f"removed {path}")
    return 0
