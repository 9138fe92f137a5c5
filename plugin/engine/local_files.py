"""The local checkpoint files an install was given, checked before anything is downloaded."""

from pathlib import Path

from .errors import InputError


def checked_files(local_files, roles):
    """{role: Path} of ``local_files`` ({role: path or None}) for the allowed ``roles``."""
    files = {}
    for role, path in local_files.items():
        if role not in roles:
            raise InputError(f"local_files: unknown checkpoint {role!r}; expected {' or '.join(roles)}")
        if path:
            path = Path(path)
            if not path.is_file():
                raise InputError(f"{path} is not a file", f"local_files.{role}")
            files[role] = path
    return files
