"""When a model cannot be downloaded: the whole command that installs it from files fetched
another way, and where each file comes from. Shared by ``demo`` and ``models install``."""

import shlex

from ..engine.offline_install import advice_on_download_failure, local_file_origins

LOCAL_FLAGS = {"denoiser": "--denoiser", "vae": "--vae", "vae_dir": "--vae-dir"}  # local_files key -> flag


def local_install_command(manager, name, precision, model_dir=None, registry=None):
    """``python -m plugin models install ...`` with the registry's file names in place of the
    files (as when they were saved in the current folder)."""
    command = ["python", "-m", "plugin", "models", "install", name]
    if precision != "fp32":
        command += ["--precision", precision]
    if model_dir:
        command += ["--model-dir", str(model_dir)]
    if registry:
        command += ["--registry", str(registry)]
    for key, saved_as, _ in local_file_origins(manager, name):
        command += [LOCAL_FLAGS[key], saved_as]
    return " ".join(shlex.quote(part) for part in command)


def local_install_advice(manager, name, precision, model_dir=None, registry=None):
    """Around an install: a download that failed is told with the whole runnable command for
    local files; an empty downloads folder it made is removed."""
    command = local_install_command(manager, name, precision, model_dir, registry)

    def advise(reason, origins):
        return (
            f"{reason}; to install from files downloaded another way, run: {command}  "
            f"({'; '.join(f'{LOCAL_FLAGS[key]} {saved_as} from {where}' for key, saved_as, where in origins)}; "
            "files that differ from these, e.g. fine-tuned weights, "
            "also need --allow-unofficial)"
        )

    return advice_on_download_failure(manager, name, advise)
