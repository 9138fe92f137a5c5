"""What a GenerationRequest checks of COP-GEN's modality names and its date."""

import datetime


from ...errors import InputError
from .registry import MODALITIES, SENSORS, expand_names

REFLECTANCE_MODALITIES = ()  # outputs are always physical: S2 is UInt16 DN already
DATE_FORMAT = "YYYY-MM-DD"


def modality_keys(field, names):
    """Official keys in network order from keys and sensor names (a list or "a,b"); InputError
    for an unknown name or one named twice."""
    from ...request import listed_names  # the request's own parsing of name lists

    names = listed_names(field, names, "modality keys or sensor names")
    seen = set()
    for name in names:
        keys = set(expand_names([name], field))
        if keys & seen:
            raise InputError(f"{name!r} names a modality already named", field)
        seen |= keys
    return expand_names(names, field)


def condition_keys(name, generate=()):
    """The modalities a condition named ``name`` fills: a sensor fills those of its groups that
    are not generated (``s2l2a`` as condition with ``S2L2A_B01_B09`` generated gives the 10 m
    and 20 m groups), an official key itself."""
    keys = expand_names([name], "conditions")
    return tuple(key for key in keys if key not in generate) if name in SENSORS else keys


def parse_date(text):
    """(year, month, day) of "YYYY-MM-DD" inside the model's 1950..2050; InputError otherwise."""
    try:
        date = datetime.date.fromisoformat(str(text).strip())
    except ValueError:
        raise InputError(f"{text!r} is not a date ({DATE_FORMAT})", "date") from None
    from .processing import YEARS  # the span the model's date encoding maps to [-1, 1]

    if not YEARS[0] <= date.year <= YEARS[1]:  # said of the date given, not of the internal key
        raise InputError(f"{date.isoformat()} is outside the model's years {YEARS[0]}..{YEARS[1]}", "date")
    return date.year, date.month, date.day


def check_date(date):
    if date is not None:
        parse_date(date)


def no_reflectance_message():
    return "COP-GEN writes Sentinel-2 as UInt16 DN (reflectance x 10000) always; leave reflectance off"


__all__ = ["MODALITIES", "SENSORS", "REFLECTANCE_MODALITIES", "modality_keys", "condition_keys", "check_date",
           "parse_date", "no_reflectance_message"]
