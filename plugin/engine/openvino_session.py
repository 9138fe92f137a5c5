"""An ONNX graph on OpenVINO's CPU plugin, behind the interface of runtime.RuntimeSession.

OpenVINO is optional (not in requirements.txt): it is only a candidate of the fast path
selection (plugin.engine.fast_path) where the package is installed. It reads the plugin's fp32
graphs as they are (the com.microsoft MultiHeadAttention included) and runs them at the
inference precision asked for: bf16 uses AVX-512 BF16 or AMX tiles where the CPU has them.
"""

from pathlib import Path

import numpy as np

from .cancel import check_cancel
from .errors import ModelError

PRECISION_HINTS = {"bf16": "bf16", "fp32": "f32", "fp16": "f16"}


class OpenVinoSession:
    def __init__(self, path, precision="bf16", threads=None):
        import openvino as ov

        from .runtime import physical_cores

        self.path = Path(path)
        config = {
            "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision],
            "PERFORMANCE_HINT": "LATENCY",  # one request at a time, all cores on it
            "INFERENCE_NUM_THREADS": threads or physical_cores() or 0,  # as onnxruntime's pool
        }
        try:
            core = ov.Core()
            self._model = core.compile_model(core.read_model(str(self.path)), "CPU", config)
        except Exception as exc:
            raise ModelError(f"{self.path}: OpenVINO could not compile it ({exc})") from exc
        self._request = self._model.create_infer_request()
        self.provider = f"OpenVINO CPU ({precision})"
        self.input_names = [port.get_any_name() for port in self._model.inputs]
        self.output_names = [port.get_any_name() for port in self._model.outputs]

    def run(self, feeds, cancel=None):
        """Runs the graph on ``feeds`` ({input name: array}); returns fresh arrays in output order.
        ``cancel`` is only checked before the call (the fast path gives OpenVINO the denoiser)."""
        check_cancel(cancel, f"running {self.path.stem}")
        results = self._request.infer(feeds)
        return [np.array(results[port]) for port in self._model.outputs]
