"""The one precision and device policy: what runs for a model folder, a device and a preference.

Users speak two words (``PREFERENCES``): "faithful" runs the folder's own graphs, exactly the
reference (fp32 folders are installed for the CPU, fp16 folders for CUDA); "fast" runs the
folder's int8 denoiser on the CPU. Graphs have precisions (``GRAPH_PRECISIONS``): a model
folder is fp32 or fp16 (``FOLDER_PRECISIONS``), and an fp32 folder may add an int8 denoiser.

:func:`resolve` is the only place that decides; CopGenModel.open, the CLI, the installer and
the QGIS settings and report all ask it, so one request gets one answer everywhere:

| device resolves to | preference | folder holds          | what runs                                  |
|--------------------|------------|-----------------------|--------------------------------------------|
| cpu                | faithful   | fp32 (or fp16)        | the folder's graphs on the CPU             |
| cpu                | fast       | fp32 + int8 denoiser  | int8 denoiser, fp32 VAE, on the CPU        |
| cpu                | fast       | no int8 denoiser      | the folder's graphs, with a note           |
| cuda               | faithful   | fp16 (or fp32)        | the folder's graphs on CUDA                |
| cuda               | fast       | anything              | the folder's graphs on CUDA, with a note:  |
|                    |            |                       | int8 is a CPU path, fp16 is CUDA's fast one|

"auto" resolves to cuda when onnxruntime offers it, else cpu; "cuda" without a CUDA provider
resolves to cpu with a note. Nothing here is an error except bad words and a broken folder:
a preference that cannot be honoured costs speed, never the run.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .errors import InputError, ModelError
from .families import family_of
from .model_folder import DENOISER_FILE, read_info

DEVICES = ("auto", "cpu", "cuda")
PREFERENCES = ("faithful", "fast")
DEFAULT_PREFERENCE = "faithful"
FOLDER_PRECISIONS = ("fp32", "fp16")
GRAPH_PRECISIONS = ("fp32", "fp16", "int8", "bf16")  # bf16: OpenVINO, see fast_path
INT8_FILE = "denoiser.int8.onnx"
INT8_KEY = "int8"  # the model.json entry of the int8 denoiser, and its precision word
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
INSTALL_HINT = "install the model (or convert its checkpoints) again"
INT8_HINT = "convert the checkpoints with the int8 denoiser, or install the model again with fp32 graphs"


@dataclass(frozen=True)
class Plan:
    """What will run: one entry per network ("denoiser", "vae_encoder", "vae_decoder").

    graphs: the ONNX files; devices: "cpu" / "cuda" each; precisions: "fp32" / "fp16" /
    "int8" each. notes: what was substituted for what was asked, in words for users.
    runtimes: the runtime plugin.engine.fast_path chose for a network ("onnxruntime" or
    "openvino", for the fast denoiser); a network not named runs on onnxruntime.
    """

    model_dir: Path
    preference: str
    device: str
    graphs: dict
    devices: dict
    precisions: dict
    notes: tuple = field(default=())
    runtimes: dict = field(default_factory=dict)

    @property
    def providers(self):
        """The ONNX Runtime provider each network is asked to run on."""
        return {name: PROVIDERS[device] for name, device in self.devices.items()}

    @property
    def denoiser_precision(self):
        return self.precisions["denoiser"]

    def describe(self):
        """The graphs' precision, e.g. "fp32" or "fp32, int8 denoiser"."""
        folder = next(p for name, p in self.precisions.items() if name != "denoiser")
        return folder if self.denoiser_precision == folder else f"{folder}, {self.denoiser_precision} denoiser"


def check_device(device):
    if device not in DEVICES:
        raise InputError(f"{device!r} is not one of {', '.join(DEVICES)}", "device")
    return device


def check_preference(preference):
    if preference not in PREFERENCES:
        raise InputError(f"{preference!r} is not one of {', '.join(PREFERENCES)}", "precision")
    return preference


def resolve_device(device="auto", cuda_available=None):
    """("cpu" | "cuda", note or None) for a device setting; see the module table."""
    check_device(device)
    if device == "cpu":
        return "cpu", None
    if cuda_available is None:
        from .runtime import cuda_available as probe  # imports onnxruntime

        cuda_available = probe()
    if cuda_available:
        return "cuda", None
    if device == "cuda":
        return "cpu", "CUDA was asked for but this onnxruntime has no CUDA provider; running on the CPU"
    return "cpu", None


def install_precision(device="auto", cuda_available=None):
    """The folder precision to install for a device setting: fp16 for "cuda" (asked for, even
    while this onnxruntime lacks the provider: the setting says where runs are meant to go) and
    for "auto" where CUDA is available; fp32 otherwise."""
    if check_device(device) == "cuda":
        return "fp16"
    return "fp16" if resolve_device(device, cuda_available)[0] == "cuda" else "fp32"


def has_int8(model_dir, info=None):
    """Whether the folder's model.json records an int8 denoiser and its file is there."""
    model_dir = Path(model_dir)
    if info is None:
        try:
            info = read_info(model_dir / "model.json")
        except ModelError:
            return False
    entry = info.get(INT8_KEY)
    return isinstance(entry, dict) and (model_dir / entry.get("file", INT8_FILE)).is_file()


def resolve(model_dir, device="auto", preference=DEFAULT_PREFERENCE, cuda_available=None, info=None):
    """The Plan for ``model_dir`` on ``device`` with ``preference`` (see the module table).

    Raises InputError (field "device" / "precision") for unknown words, ModelError when the
    folder is missing or incomplete. ``cuda_available``: None asks onnxruntime.
    """
    check_device(device)
    check_preference(preference)
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"model folder {model_dir} does not exist; install the model first", "model")
    info = read_info(model_dir / "model.json", INSTALL_HINT) if info is None else info
    folder = info.get("precision", "fp32")
    if folder not in FOLDER_PRECISIONS:
        raise ModelError(f"{model_dir}: unknown precision {folder!r} in model.json; {INSTALL_HINT}", "model")
    on, device_note = resolve_device(device, cuda_available)
    notes = [device_note] if device_note else []
    denoiser, denoiser_precision = model_dir / DENOISER_FILE, folder
    if preference == "fast":
        if on == "cuda":
            notes.append(f"fast: the int8 denoiser is for the CPU; on CUDA the folder's {folder} graphs run")
        elif has_int8(model_dir, info):
            denoiser = model_dir / info[INT8_KEY].get("file", INT8_FILE)
            denoiser_precision = INT8_KEY
        else:
            notes.append(f"fast: {model_dir} has no int8 denoiser, so its faithful graphs run (slower); {INT8_HINT}")
    graphs = {"denoiser": denoiser}
    graphs.update({name: model_dir / file for name, file in family_of(info).vae_graph_files().items()})
    for path in graphs.values():
        if not path.is_file():
            raise ModelError(f"{path} is missing, the model folder is incomplete; {INSTALL_HINT}", "model")
    return Plan(
        model_dir=model_dir,
        preference=preference,
        device=on,
        graphs=graphs,
        devices=dict.fromkeys(graphs, on),
        precisions={name: denoiser_precision if name == "denoiser" else folder for name in graphs},
        notes=tuple(notes),
    )


def legacy_preference(value) -> Optional[str]:
    """A stored or typed precision word of earlier versions in today's words ("fast-int8",
    "int8" -> "fast"), today's words as they are, None for anything else."""
    if value in PREFERENCES:
        return value
    return {"fast-int8": "fast", "int8": "fast"}.get(value)
