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
