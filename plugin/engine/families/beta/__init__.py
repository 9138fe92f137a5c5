"""COP-GEN-Beta (CVPR Workshops 2025): four modalities as 8-bit Major TOM thumbnails, one
shared VAE. Its registry is ``registry.py`` here; its networks ``plugin.engine.model``."""

from ...model_folder import DECODER_FILE, ENCODER_FILE

FAMILY = "cop-gen-beta"
LABEL = "COP-GEN-Beta"


def vae_graph_files():
    return {"vae_encoder": ENCODER_FILE, "vae_decoder": DECODER_FILE}


def open_model(model_dir, info=None, **options):
    from ...model import CopGenModel

    return CopGenModel.open(model_dir, **options)


def checkpoint_roles():
    """The checkpoints of a registry entry / install: the denoiser and the one VAE."""
    return ("denoiser", "vae")


def local_checkpoints(local_files):
    """{role: Path} of an install's local files ({"denoiser": path, "vae": path}, either
    optional); one InputError line for an unknown key or a path that is not a file."""
    from ...local_files import checked_files

    return checked_files(local_files, checkpoint_roles())


def convert_inputs(checkpoints):
    """(vae_path, vae_dir) for plugin.engine.convert.convert."""
    return checkpoints["vae"], None


def graph_roles():
    """{graph file: (input names, output names)} of a converted folder."""
    from ...model_folder import GRAPH_ROLES

    return dict(GRAPH_ROLES)



def local_file_origins(sources):
    """[(local_files key, file name to save as, where it comes from)] of a registry entry's
    sources: what an install from files fetched another way is given."""
    found = []
    for role in checkpoint_roles():
        source = sources[role]
        where = source["url"] + "".join(f" (or {o['file_name']} from {o['url']})" for o in source.get("alternatives", []))
        found.append((role, source["file_name"], where))
    return found
