"""open_session: provider choice, CPU fallback, errors naming the file or parameter."""

import logging
import os

import pytest

from plugin.engine.errors import InputError, ModelError
from plugin.engine.runtime import cuda_available, open_session, physical_cores


def test_cpu_session_runs_the_graph(tiny_model_dir, expected):
    session = open_session(tiny_model_dir / "vae_decoder.onnx", device="cpu", threads=1)
    assert session.provider == "CPUExecutionProvider"
    assert session.input_names == ["latents"]
    (images,) = session.run({"latents": expected["vae_latents"]})
    assert images.shape == expected["vae_decoded"].shape


def test_auto_device_picks_an_available_provider(tiny_model_dir):
    session = open_session(tiny_model_dir / "denoiser.onnx")
    assert session.input_names == ["latents", "timesteps"]
    wanted = "CUDAExecutionProvider" if cuda_available() else "CPUExecutionProvider"
    assert session.provider == wanted


@pytest.mark.skipif(cuda_available(), reason="this onnxruntime has a CUDA provider")
def test_cuda_request_falls_back_to_cpu_with_a_warning(tiny_model_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="plugin.engine.runtime"):
        session = open_session(tiny_model_dir / "vae_encoder.onnx", device="cuda")
    assert session.provider == "CPUExecutionProvider"
    assert "CUDA" in caplog.text and "vae_encoder.onnx" in caplog.text


def test_unknown_device_is_named(tiny_model_dir):
    with pytest.raises(InputError, match="device: 'tpu' is not one of auto, cpu, cuda") as error:
        open_session(tiny_model_dir / "denoiser.onnx", device="tpu")
    assert error.value.field == "device"


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ModelError, match="absent.onnx"):
        open_session(tmp_path / "absent.onnx", device="cpu")


def test_corrupt_file_is_named(tmp_path, tiny_model_dir):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes((tiny_model_dir / "vae_decoder.onnx").read_bytes()[:5000])
    with pytest.raises(ModelError, match="broken.onnx"):
        open_session(broken, device="cpu")


def test_missing_external_data_is_named(tmp_path, tiny_model_dir):
    lonely = tmp_path / "denoiser.onnx"
    lonely.write_bytes((tiny_model_dir / "denoiser.onnx").read_bytes())
    with pytest.raises(ModelError, match="denoiser.onnx"):
        open_session(lonely, device="cpu")


def test_physical_cores_within_usable_cpus():
    cores = physical_cores()
    if cores is not None:
        assert 1 <= cores <= len(os.sched_getaffinity(0))


def test_io_binding_reuses_buffers_without_aliasing_results(tiny_model_dir, expected):
    # the CUDA path (device buffers kept between calls) run on the CPU: every result must
    # stay what a plain run gives, even after later calls refill the same buffers
    import numpy as np

    plain = open_session(tiny_model_dir / "denoiser.onnx", device="cpu", threads=1)
    bound = open_session(tiny_model_dir / "denoiser.onnx", device="cpu", threads=1, io_binding=True)
    latents, timesteps = expected["denoiser_latents"], expected["denoiser_timesteps"]
    calls = [
        (latents, timesteps),
        (latents[:1] * 0.5, timesteps[:1]),  # a new shape: new buffers
        (latents * 2.0, timesteps),  # the first shape again: its buffers refilled
        (latents[::-1].copy(), timesteps[::-1].copy()),
    ]
    originals = [(x.copy(), t.copy()) for x, t in calls]
    results = [bound.run({"latents": x, "timesteps": t})[0] for x, t in calls]
    for (x, t), (x0, t0) in zip(calls, originals):  # the callers' arrays are left alone
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(t, t0)
    for (x, t), result in zip(calls, results):
        wanted = plain.run({"latents": x, "timesteps": t})[0]
        np.testing.assert_allclose(result, wanted, rtol=0, atol=1e-6)
