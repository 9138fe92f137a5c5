"""What every reader of a converted model folder shares: its model.json and file hashes."""

import hashlib
import json
import os

from .cancel import check_cancel
from .errors import ModelError

INFO_FILE = "model.json"
_CHUNK = 1 << 20
REINSTALL_HINT = "reinstall the model (remove it, then install it)"
# The graphs of a converted folder (plugin.engine.convert writes them, quantize adds int8).
DENOISER_FILE = "denoiser.onnx"
ENCODER_FILE = "vae_encoder.onnx"
DECODER_FILE = "vae_decoder.onnx"
# graph file -> (input names, output names) it must declare: a swapped or foreign graph is named
# when the model is opened or verified, not met as an ONNX Runtime error in the middle of a run
GRAPH_ROLES = {
    DENOISER_FILE: (["latents", "timesteps"], ["noise"]),
    ENCODER_FILE: (["image"], ["moments"]),
    DECODER_FILE: (["latents"], ["image"]),
}


def check_graph_role(role, inputs, outputs, path, expected=None):
    """ModelError naming ``path`` unless a graph with these input and output names can serve
    as ``role`` (a key of GRAPH_ROLES, or ``expected`` (inputs, outputs) for another family's)."""
    expected = GRAPH_ROLES[role] if expected is None else expected
    if (sorted(inputs), sorted(outputs)) != (sorted(expected[0]), sorted(expected[1])):
        raise ModelError(
            f"{path}: takes {list(inputs)} and gives {list(outputs)}, not the {role} graph's "
            f"{expected[0]} -> {expected[1]} (files swapped or replaced); {REINSTALL_HINT}"
        )


def source_hashes(info):
    """{"<role>_sha256"}: the checkpoints a model folder was converted from (its model.json
    ``info``: "denoiser" and "vae" for COP-GEN-Beta, "denoiser" and "vae.<key>" for COP-GEN),
    as outputs, dataset tags and STAC items record them."""
    sources = info.get("sources") or {"denoiser": {}, "vae": {}}
    return {f"{role}_sha256": str(entry.get("sha256", "")) for role, entry in sources.items()}


def sha256_file(path, cancel=None):
    """Hex sha256 of a file, read in chunks (checkpoints and graphs are over a gigabyte);
    ``cancel()`` returning True stops it with Cancelled (a chunk takes milliseconds)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(_CHUNK), b""):
            check_cancel(cancel, f"reading {path}")
            digest.update(block)
    return digest.hexdigest()


def file_entry(path):
    """The {"sha256", "bytes"} record model.json keeps for each file of the folder."""
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def read_info(path, hint=""):
    """model.json at ``path`` as a dict; ModelError naming the file (plus ``hint``) otherwise."""
    suffix = f"; {hint}" if hint else ""
    if not path.is_file():
        raise ModelError(f"{path} is missing, this is not a converted model folder{suffix}")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{path} is unreadable ({exc}){suffix}") from None
    if not isinstance(info, dict):
        raise ModelError(f"{path} is not a model.json object{suffix}")
    check_closed_world(path, info)
    return info


def folder_paths(info):
    """(key, name) of every file model.json points at: ``files`` entries, ``graphs`` and any
    section's ``file`` (the int8 denoiser's), except ``sources`` (the checkpoints it came from)."""
    files = info.get("files")
    found = [("files", name) for name in files] if isinstance(files, dict) else []
    graphs = info.get("graphs")
    for role, entry in graphs.items() if isinstance(graphs, dict) else ():
        found.append((f"graphs.{role}", entry.get("file") if isinstance(entry, dict) else entry))
    for key, entry in info.items():
        if key != "sources" and isinstance(entry, dict) and "file" in entry:
            found.append((f"{key}.file", entry["file"]))
    return found


def check_closed_world(path, info):
    """A model folder is a closed world: ModelError naming model.json (``path``) unless every
    file it points at lies inside its folder (symlinks resolved), so a shared folder cannot make
    a run open, hash or print another file of the machine."""
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    for key, name in folder_paths(info):
        inside = isinstance(name, str) and name and not os.path.isabs(name)
        resolved = os.path.realpath(os.path.join(folder, name)) if inside else ""
        if not inside or os.path.commonpath([folder, resolved]) != folder or resolved == folder:
            raise ModelError(f"{path}: {key} entry {name!r} lies outside the model folder; {REINSTALL_HINT}", "model")
