"""Model families: everything that differs between COP-GEN-Beta and COP-GEN lives in one
sub-package per family (its modality registry, shapes, pre/post-processing, graph builders,
model class, conversion); the rest of the engine asks the family through this table instead
of branching on its name.

A family package exposes: ``FAMILY`` (the word in model.json), ``LABEL`` (for users),
``vae_graph_files()`` ({plan graph name: file name}), ``open_model(model_dir, info, **options)``.
"""

import importlib

from ..errors import ModelError

BETA = "cop-gen-beta"
COPGEN = "cop-gen"
FAMILY_KEY = "family"  # in model.json; folders written before there were families have none
_PACKAGES = {BETA: "beta", COPGEN: "copgen"}
FAMILIES = tuple(_PACKAGES)


def family_name(info):
    """The family a model.json ``info`` says (COP-GEN-Beta when it says none)."""
    return info.get(FAMILY_KEY, BETA) if isinstance(info, dict) else BETA


def family(name):
    """The family package of ``name`` (a FAMILIES word)."""
    if name not in _PACKAGES:
        raise ModelError(f"unknown model family {name!r}; expected one of {', '.join(FAMILIES)}", "model")
    return importlib.import_module(f".{_PACKAGES[name]}", __name__)


def family_of(info):
    """The family package of a model.json ``info``."""
    return family(family_name(info))


def converter(name):
    """The conversion module (``families/<family>/convert.py``) of family ``name``."""
    return importlib.import_module(f"{family(name).__name__}.convert")


def request_rules(name):
    """What a GenerationRequest checks of family ``name``'s modality names and date
    (``families/<family>/request_rules.py``)."""
    return importlib.import_module(f"{family(name).__name__}.request_rules")


def owner_hint(name, asked):
    """"; X is a <other family> modality, this model is <asked>" when ``name`` is a modality of
    another family than ``asked`` (the model a user opened), else ""."""
    for other in FAMILIES:
        if other == asked:
            continue
        try:
            request_rules(other).condition_keys(name)
        except Exception:  # noqa: BLE001  (any refusal: not that family's name either)
            continue
        return f"; {name} is a {family(other).LABEL} modality and this model is {family(asked).LABEL}"
    return ""
