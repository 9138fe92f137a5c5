"""Writing the graphs of a model folder under construction (every family's converter uses it).

Each graph carries the model's essentials as ONNX metadata_props (JSON values), so a graph
found alone still says what it belongs to.
"""

import json
import logging
import os

import onnx

from .. import __version__
from .model_folder import DENOISER_FILE
from .precision import INT8_FILE, INT8_KEY
from .quantize import quantize_denoiser
from .onnx_graph import set_metadata

log = logging.getLogger(__name__)

DENOISER_DATA_FILE = "denoiser.onnx.data"  # weights beside the graph: protobuf stops at 2 GB


def graph_metadata(essentials):
    """model.json's essentials (plus the software version) as ONNX metadata_props."""
    values = {**essentials, "software_version": __version__}
    return {key: json.dumps(value) for key, value in values.items()}


def write_graph(model, path, essentials):
    set_metadata(model, graph_metadata(essentials))
    onnx.save_model(model, os.fspath(path))


def write_denoiser(work, build, essentials, with_int8):
    """Builds the denoiser with ``build(external_data_path)`` (its weights stream into the
    data file as the graph is built), writes it, and adds the int8 denoiser when asked.
    Returns model.json's int8 entry ({} without one)."""
    model = build(work / DENOISER_DATA_FILE)
    write_graph(model, work / DENOISER_FILE, essentials)
    del model
    if not with_int8:
        return {}
    log.info("quantising %s to int8", DENOISER_FILE)
    return {INT8_KEY: quantize_denoiser(work / DENOISER_FILE, work / INT8_FILE)}
