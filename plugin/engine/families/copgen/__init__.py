"""COP-GEN (Espinosa et al., 2026): twelve Major TOM modalities in physical units at native
resolution, plus location and date, one VAE per image modality. See ``registry`` for the
modalities and ``docs/ARCHITECTURE.md`` for where each part of the family lives."""

FAMILY = "cop-gen"
LABEL = "COP-GEN"


def vae_graph_files():
    from .files import vae_graph_files

    return vae_graph_files()


def open_model(model_dir, info=None, **options):
    from .model import CopGenModel

    return CopGenModel.open(model_dir, info=info, **options)


def vae_role(key):
    """The sources / known_sha256 role of a modality's VAE checkpoint."""
    return f"vae.{key}"


def checkpoint_roles():
    """The checkpoints of a registry entry / install: the denoiser, then one VAE per image
    modality (role ``vae.<key>``). Reading the registry needs no converter (onnx): Check
    installation lists the installed models before the missing packages are installed."""
    from .registry import IMAGE_MODALITIES

    return ("denoiser",) + tuple(vae_role(key) for key in IMAGE_MODALITIES)


def local_checkpoints(local_files):
    """{role: Path} of an install's local files: {"denoiser": path, "vae_dir": the official
    copgen-vaes folder}, either optional; one InputError line for what is wrong."""
    from ...local_files import checked_files
    from .convert import checkpoints

    files = dict(local_files)
    vae_dir = files.pop("vae_dir", None)
    found = checked_files(files, ("denoiser",))
    if vae_dir:
        vaes = checkpoints("-", vae_dir=vae_dir)
        vaes.pop("denoiser")
        found.update(vaes)
    return found


def convert_inputs(checkpoints):
    """(vae_path, vae_dir) for plugin.engine.convert.convert: the one folder that holds every
    VAE in the official layout (a local --vae-dir, or the downloads)."""
    from ...errors import InputError

    folders = {path.parent.parent for role, path in checkpoints.items() if role != "denoiser"}
    if len(folders) != 1:
        raise InputError("the ten VAEs must come from one folder (all local, or all downloaded)", "vae_dir")
    return None, folders.pop()


def graph_roles():
    """{graph file: (input names, output names)} of a converted folder."""
    from ...model_folder import DENOISER_FILE
    from .denoiser_onnx import output_name
    from .files import decoder_name, encoder_name
    from .registry import IMAGE_MODALITIES, MODALITIES

    roles = {DENOISER_FILE: (list(MODALITIES) + ["timesteps"], [output_name(key) for key in MODALITIES])}
    for key in IMAGE_MODALITIES:
        roles[encoder_name(key)] = (["image"], ["moments"])
        roles[decoder_name(key)] = (["latents"], ["image"])
    return roles



def local_file_origins(sources):
    """[(local_files key, file name to save as, where it comes from)]: the denoiser file, and
    the folder of the ten VAEs in their published layout."""
    from .registry import BY_KEY, IMAGE_MODALITIES

    denoiser = sources["denoiser"]
    first = sources[f"vae.{IMAGE_MODALITIES[0]}"]
    repository = first["url"].rsplit("/", 2)[0]  # .../resolve/main/<folder>/model-50-ema.pth
    folders = ", ".join(BY_KEY[key].vae_folder for key in IMAGE_MODALITIES)
    return [("denoiser", denoiser["file_name"], denoiser["url"]),
            ("vae_dir", "copgen-vaes",
             f"{repository}/<folder>/{first['file_name']} for each of the {len(IMAGE_MODALITIES)} folders {folders}")]
