"""COP-GEN-Beta (CVPR Workshops 2025): four modalities as 8-bit Major TOM thumbnails, one
shared VAE. Its registry is ``plugin.engine.modalities``; its networks ``plugin.engine.model``."""

from ...model_folder import DECODER_FILE, ENCODER_FILE

FAMILY = "cop-gen-beta"
LABEL = "COP-GEN-Beta"


def vae_graph_files():
    return {"vae_encoder": ENCODER_FILE, "vae_decoder": DECODER_FILE}


def open_model(model_dir, info=None, **options):
    from ...model import CopGenModel

    return CopGenModel.open(model_dir, **options)
