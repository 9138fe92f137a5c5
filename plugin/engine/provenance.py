"""Where a model's weights come from, as every output and listing says it.

``models install`` / Install model write install.json beside model.json; its ``unofficial``
flag is set when checkpoints that differ from the official ones were allowed in (fine-tuned or
other weights). Outputs (GeoTIFF tags, STAC items, QGIS layer metadata), ``models list`` and
Check installation all say it through :func:`checkpoint_provenance`, with the number of
attention heads the denoiser was converted with.
"""

import json
from pathlib import Path

INSTALL_RECORD = "install.json"  # written by plugin.engine.manager
OFFICIAL = "official"
UNOFFICIAL = "unofficial"  # checkpoints that differ from the official ones were allowed in
BY_HAND = "converted by hand"  # no install record: never checked against the official ones


def checkpoint_provenance(model_dir, info):
    """{"checkpoints": OFFICIAL | UNOFFICIAL | BY_HAND, "num_heads": "16"} of a model folder
    (``info``: its model.json; ``model_dir`` None for a model built by hand)."""
    record = {}
    if model_dir is not None:
        try:
            record = json.loads((Path(model_dir) / INSTALL_RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {}
    if not isinstance(record, dict) or "unofficial" not in record:
        state = BY_HAND
    else:
        state = UNOFFICIAL if record["unofficial"] else OFFICIAL
    return {"checkpoints": state, "num_heads": str((info or {}).get("num_heads", ""))}


def describe_weights(model_dir):
    """ "official checkpoints, 16 heads" (or unofficial, converted by hand) of a model folder."""
    try:
        info = json.loads((Path(model_dir) / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = {}
    provenance = checkpoint_provenance(model_dir, info if isinstance(info, dict) else {})
    return f"{provenance['checkpoints']} checkpoints, {provenance['num_heads'] or '?'} heads"
