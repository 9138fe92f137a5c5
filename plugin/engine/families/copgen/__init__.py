"""COP-GEN (Espinosa et al., 2026): twelve Major TOM modalities in physical units at native
resolution, plus location and date, one VAE per image modality. See ``registry`` for the
modalities and ``docs/ARCHITECTURE.md`` for where each part of the family lives."""

FAMILY = "cop-gen"
