"""Install model: download (or take local checkpoint files), verify, convert to ONNX, install."""

from pathlib import Path

from qgis.core import (
    QgsProcessingOutputFolder,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
)

from ...engine.manager import ModelManager
from ...engine.offline_install import advice_on_download_failure
from ...engine.precision import FOLDER_PRECISIONS, install_precision
from .. import settings
from ..errors import engine_errors
from .base import ConsoleLines, CopGenAlgorithm

PRECISIONS = ("auto", *FOLDER_PRECISIONS)  # the files; both run "faithful" (fast = fp32 + int8 denoiser)
PRECISION_OPTIONS = (
    "auto: fp16 where the model runs on a CUDA GPU, else fp32",
    "fp32 (for the CPU; adds the int8 denoiser that precision fast uses)",
    "fp16 (for CUDA GPUs)",
)
CHECKPOINT_FILTER = "Checkpoints (*.pth *.safetensors *.ckpt);;All files (*.*)"
LOCAL_FILES = {"DENOISER_FILE": "denoiser", "VAE_FILE": "vae"}
LOCAL_FILE_LABELS = {"DENOISER_FILE": "Local denoiser checkpoint",
                     "VAE_FILE": "Local VAE checkpoint (COP-GEN-Beta)"}
VAE_DIR = "VAE_DIR"  # COP-GEN: the folder of its ten VAEs, local_files "vae_dir"
LOCAL_PARAMETERS = {**{role: name for name, role in LOCAL_FILES.items()}, "vae_dir": VAE_DIR}  # local_files key -> parameter


class InstallModelAlgorithm(CopGenAlgorithm):
    NAME = "installmodel"
    DISPLAY_NAME = "Install model"
    GROUP = "models"
    HELP = (
        "Downloads the official COP-GEN-Beta checkpoints (the denoiser, about 1.1 GB, and the Stable "
        "Diffusion autoencoder), checks their sha256, converts them to ONNX and installs the model in "
        "the model folder of the plugin settings. Interrupted downloads resume.\n\n"
        "COP-GEN (twelve modalities in physical units) downloads its denoiser (about 1.1 GB) and ten "
        "VAEs (about 3.4 GB); offline, give the denoiser file and the folder of the ten VAEs in their "
        "published layout (a subfolder per VAE, each with its model-50-ema.pth). Both models are "
        "installed side by side; the plugin settings say which one the algorithms use.\n\n"
        "Local denoiser / VAE checkpoint: files already on disk, converted instead of downloaded; "
        "they must be the official files (same sha256) unless \"Accept local checkpoints that differ "
        "from the official ones\" is ticked (e.g. fine-tuned weights: the model is then recorded as "
        "unofficial).\n\nModel files: auto installs fp16 where the model runs on a CUDA GPU and fp32 "
        "on the CPU. Both run the precision called faithful in the settings; the fp32 files also bring "
        "the int8 denoiser that the precision fast uses on the CPU."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        with engine_errors(self):
            names = ModelManager(settings.model_root()).names()
        self.addParameter(QgsProcessingParameterEnum("MODEL", self.tr("Model"), options=names, defaultValue=0))
        self.addParameter(
            QgsProcessingParameterEnum(
                "PRECISION",
                self.tr("Model files"),
                options=[self.tr(option) for option in PRECISION_OPTIONS],
                defaultValue=0,
            )
        )
        for name, role in LOCAL_FILES.items():
            self.addParameter(
                QgsProcessingParameterFile(
                    name,
                    self.tr(f"{LOCAL_FILE_LABELS[name]} (instead of downloading it)"),
                    fileFilter=CHECKPOINT_FILTER,
                    optional=True,
                )
            )
        self.addParameter(
            QgsProcessingParameterFile(
                VAE_DIR, self.tr("Local VAE folder (COP-GEN; instead of downloading the ten VAEs)"),
                behavior=QgsProcessingParameterFile.Behavior.Folder, optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                "ALLOW_UNOFFICIAL", self.tr("Accept local checkpoints that differ from the official ones"), False
            )
        )
        heads = QgsProcessingParameterNumber(
            "HEADS", self.tr("Attention heads of an unofficial denoiser (empty: the official 16)"),
            QgsProcessingParameterNumber.Type.Integer, optional=True, minValue=1,
        )
        heads.setFlags(heads.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(heads)
        self.addOutput(QgsProcessingOutputFolder("MODEL_DIR", self.tr("Installed model folder")))

    def checkParameterValues(self, parameters, context):  # noqa: N802
        for name in LOCAL_FILES:
            path = self.parameterAsFile(parameters, name, context)
            if path and not Path(path).is_file():
                return False, f"{self.parameterDefinition(name).description()}: {path} is not a file"
        return super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with engine_errors(self):
            manager = ModelManager(settings.model_root())
        name = manager.names()[self.parameterAsEnum(parameters, "MODEL", context)]
        precision = PRECISIONS[self.parameterAsEnum(parameters, "PRECISION", context)]
        if precision == "auto":
            precision = install_precision(settings.device())
        local_files = {
            role: path
            for parameter, role in LOCAL_FILES.items()
            if (path := self.parameterAsFile(parameters, parameter, context))
        }
        vae_dir = self.parameterAsFile(parameters, VAE_DIR, context)
        if vae_dir:
            local_files["vae_dir"] = vae_dir
        feedback.pushInfo(f"Installing {name} ({precision}) into {manager.model_root}")
        lines = ConsoleLines(feedback, context)
        shown = {"message": None}

        def report(done, total, message):
            if message != shown["message"]:  # the progress text is also the log's line: said once
                shown["message"] = message
                lines.text(message)
            if total:
                lines.progress(100.0 * done / total)

        with engine_errors(self), advice_on_download_failure(manager, name, self.local_files_advice):
            folder = manager.install(
                name,
                precision,
                progress=report,
                cancel=feedback.isCanceled,
                local_files=local_files,
                allow_unofficial=self.parameterAsBoolean(parameters, "ALLOW_UNOFFICIAL", context),
                heads=self.parameterAsInt(parameters, "HEADS", context) if parameters.get("HEADS") not in (None, "") else None,
            )
        feedback.pushInfo(f"Installed {name} in {folder}")
        if folder != settings.model_dir(name):
            feedback.pushWarning(
                f"The algorithms load {settings.model_dir(name)}, not this model; choose it in the plugin settings"
            )
        return {"MODEL_DIR": str(folder)}

    def local_files_advice(self, reason, origins):
        """A failed download, then the parameters that take files fetched another way, each
        with where its file comes from (the command line's advice, in this dialog's words)."""
        files = "; ".join(
            f"{self.parameterDefinition(LOCAL_PARAMETERS[key]).description()}: {saved_as} from {where}"
            for key, saved_as, where in origins
        )
        unofficial = self.parameterDefinition("ALLOW_UNOFFICIAL").description()
        return (f"{reason}; to install from files downloaded another way, give {files}; files that differ from "
                f'these, e.g. fine-tuned weights, also need "{unofficial}"')
