"""What a GenerationRequest checks of COP-GEN-Beta's modality names."""

from ...errors import InputError
from .registry import MODALITIES, REFLECTANCE_MODALITIES, get_modality


def modality_keys(field, names):
    """COP-GEN-Beta's modality keys in model order, from a list or a comma-separated string;
    InputError for an unknown or repeated key."""
    from ...request import listed_names  # the request's own parsing of name lists

    names = listed_names(field, names, "modality keys")
    keys = []
    for name in names:
        get_modality(name, field)
        if name in keys:
            raise InputError(f"modality {name!r} named twice", field)
        keys.append(name)
    return tuple(sorted(keys, key=MODALITIES.index))


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
