"""What a GenerationRequest checks of COP-GEN-Beta's modality names."""

from ...errors import InputError
from ...modalities import MODALITIES, REFLECTANCE_MODALITIES, get_modality
from ...request import modality_keys  # noqa: F401  (the rule itself lives with the request)


def condition_keys(name, generate=()):
    """The modalities a condition named ``name`` fills: itself."""
    return (get_modality(name, "conditions").key,)


def check_date(date):
    if date is not None:
        raise InputError("COP-GEN-Beta has no date condition; leave the date empty", "date")


def no_reflectance_message():
    return f"only {', '.join(REFLECTANCE_MODALITIES)} outputs can be written as reflectance; none is generated"


__all__ = ["MODALITIES", "REFLECTANCE_MODALITIES", "modality_keys", "condition_keys", "check_date",
           "no_reflectance_message"]
