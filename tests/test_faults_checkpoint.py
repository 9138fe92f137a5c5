"""Hostile and damaged checkpoints, generated here: each is refused in time proportional to its
size, with one line naming the file (and tensor) and never the pickled data, and leaves no output.
"""

import json
import signal
import struct
import time

import numpy as np
import pytest
from _faults import error_line, run_cli, start_cli, time_limit, each_test_time_limit  # noqa: F401 (autouse fixture)

from plugin.engine.checkpoint import check_finite, load_state_dict
from checkpoint_write import _PickleWriter, save_pth, save_safetensors, write_torch_zip
from plugin.engine.errors import Cancelled, CheckpointError

MARKER = "PAYLOAD_SHOULD_NOT_BE_PRINTED"


def _tensor_pickle(entries, key_ops=None):
    """A torch-like state-dict pickle from (name, key, storage type, numel, offset, size, stride)."""
    out = _PickleWriter()
    out.write(b"\x80\x02")
    out.global_("collections", "OrderedDict")
    out.write(b")R(")
    for name, key, storage, numel, offset, size, stride in entries:
        out.unicode(name)
        out.global_("torch._utils", "_rebuild_tensor_v2")
        out.write(b"((")
        out.unicode("storage")
        out.global_("torch", storage)
        out.unicode(key)
        out.unicode("cpu")
        out.int_(numel)
        out.write(b"tQ")
        out.int_(offset)
        out.tuple_(size)
        out.tuple_(stride)
        out.write(b"\x89")
        out.global_("collections", "OrderedDict")
        out.write(b")RtR")
    out.write(b"u.")
    return out.getvalue()


def _shared_tuple_key_pickle(levels=60):
    """{t_levels: 1} where t_0 = () and t_k = (t_{k-1}, t_{k-1}): hashing the key touches 2**levels
    tuples, in C, deaf to Ctrl-C."""
    body = b"\x80\x02}" + b")q\x000"  # EMPTY_TUPLE, BINPUT 0, POP
    for level in range(1, levels + 1):
        body += b"h" + bytes([level - 1]) + b"h" + bytes([level - 1]) + b"\x86q" + bytes([level])
        body += b"0" if level < levels else b""  # POP all but the key
    return body + b"K\x01s."


def _nested_pickle(depth=100_000):
    """{'a': [[[[...]]]]} nested ``depth`` deep, plus a long marker string."""
    marker = MARKER.encode() * 50
    return b"\x80\x02}X" + struct.pack("<I", len(marker)) + marker + b"]" * depth + b"a" * (depth - 1) + b"s."


def _hostile_pth(tmp_path, name, pickled, storages=None):
    path = tmp_path / name
    write_torch_zip(path, pickled, storages or {})
    return path


HOSTILE_PICKLES = {
    "shared_tuple_key": (lambda: _shared_tuple_key_pickle(), "nests containers|not a string"),
    "tuple_key": (lambda: _shared_tuple_key_pickle(levels=3), "dict key that is not a string"),
    "nested": (lambda: _nested_pickle(), "nests containers"),
    "zero_strides": (
        lambda: _tensor_pickle([("w", "0", "FloatStorage", 1, 0, (100_000, 100_000), (0, 0))]),
        "zero or overlapping strides",
    ),
    "overlapping_strides": (
        lambda: _tensor_pickle([("w", "0", "FloatStorage", 64, 0, (60, 5), (1, 1))]),
        "zero or overlapping strides",
    ),
    "huge_shape": (
        lambda: _tensor_pickle([("w", "0", "FloatStorage", 64, 0, (2**62, 2**62), (1, 1))]),
        "too large|invalid shape|past the end",
    ),
    "shared_storage_sum": (
        lambda: _tensor_pickle(
            [(f"w{i}", "0", "FloatStorage", 4096, 0, (4096,), (1,)) for i in range(100)]
        ),
        "times the bytes the file",
    ),
    "persistent_id_not_storage": (
        lambda: b"\x80\x02}X\x01\x00\x00\x00a(X\x03\x00\x00\x00xyzK\x01tQs.",
        "persistent id",
    ),
    "set_of_tuples": (lambda: b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00\x8f(K\x01\x90.", "opcode"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_PICKLES))
def test_hostile_pickle_is_refused_fast_with_one_short_line(tmp_path, kind):
    build, expected = HOSTILE_PICKLES[kind]
    path = _hostile_pth(tmp_path, f"{kind}.pth", build(), {"0": np.zeros(4096, np.float32)})
    with time_limit(60):
        start = time.monotonic()
        with pytest.raises(CheckpointError) as caught:
            load_state_dict(path)
        elapsed = time.monotonic() - start
    message = str(caught.value)
    assert elapsed < 5, elapsed
    assert str(path) in message and "\n" not in message
    assert len(message) < 400 and MARKER not in message
    import re

    assert re.search(expected, message), message


def test_convert_refuses_the_shared_tuple_key_checkpoint_and_leaves_nothing(tmp_path, fixtures_dir):
    hostile = _hostile_pth(tmp_path, "tiny_hang.pth", _shared_tuple_key_pickle())
    assert hostile.stat().st_size < 2048
    out = tmp_path / "models" / "m"
    result = run_cli(["convert", "--denoiser", hostile, "--vae", fixtures_dir / "vae_tiny.pth", "--out", out], timeout=120)
    assert result.returncode == 1
    line = error_line(result)
    assert "tiny_hang.pth" in line and "refused to load" in line
    assert not out.exists() and (not out.parent.exists() or list(out.parent.iterdir()) == [])


def test_convert_stops_on_sigterm_while_reading_a_checkpoint(tmp_path, monkeypatch, fixtures_dir):
    """A long (legitimate-looking) pickle keeps the reader busy; SIGTERM stops it within a
    second, leaving no model folder."""
    slow = _slow_checkpoint(tmp_path)
    out = tmp_path / "models" / "m"
    child = start_cli(["convert", "--denoiser", slow, "--vae", fixtures_dir / "vae_tiny.pth", "--out", out])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "reading the checkpoints" not in _peek(child):
            time.sleep(0.05)
        time.sleep(0.5)
        assert child.poll() is None, "finished before it could be interrupted"
        sent = time.monotonic()
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)
        assert time.monotonic() - sent < 1.5
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130
    # the family is recognised before any folder is made: nothing, not even the parent
    assert not out.exists() and (not out.parent.exists() or [p.name for p in out.parent.iterdir()] == [])


def _slow_checkpoint(tmp_path, count=150_000):
    """A legitimate-looking checkpoint that takes seconds to read: many small tensors, all views
    of one storage (a long pickle, a short archive)."""
    entries = [(f"w{i}", "0", "FloatStorage", 4, i % 4, (1,), (1,)) for i in range(count)]
    path = tmp_path / "slow.pth"
    write_torch_zip(path, _tensor_pickle(entries), {"0": np.zeros(4, np.float32)})
    return path


def test_archive_with_too_many_members_is_refused_before_it_is_parsed(tmp_path):
    from plugin.engine.checkpoint import MAX_ARCHIVE_MEMBERS

    count = MAX_ARCHIVE_MEMBERS + 1
    entries = [(f"w{i}", str(i), "FloatStorage", 1, 0, (1,), (1,)) for i in range(count)]
    path = tmp_path / "many.pth"
    write_torch_zip(path, _tensor_pickle(entries[:1]), {str(i): np.zeros(1, np.float32) for i in range(count)})
    start = time.monotonic()
    with pytest.raises(CheckpointError, match=f"many.pth: the archive holds {count + 6} members"):
        load_state_dict(path)
    assert time.monotonic() - start < 1


def _peek(child):
    """stderr read so far, without blocking (the child writes progress lines)."""
    import os
    import select

    chunks = []
    while select.select([child.stderr], [], [], 0)[0]:
        data = os.read(child.stderr.fileno(), 65536)
        if not data:
            break
        chunks.append(data.decode(errors="replace"))
    _peek.seen = getattr(_peek, "seen", "") + "".join(chunks)
    return _peek.seen


def test_load_state_dict_stops_when_cancelled(tmp_path):
    entries = [(f"w{i}", str(i), "FloatStorage", 1, 0, (1,), (1,)) for i in range(20_000)]
    path = tmp_path / "many.pth"
    write_torch_zip(path, _tensor_pickle(entries), {str(i): np.zeros(1, np.float32) for i in range(20_000)})
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 2

    with time_limit(60), pytest.raises(Cancelled, match="many.pth"):
        load_state_dict(path, cancel)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_weights_are_refused_naming_the_tensor(tmp_path, value):
    state = {"ok": np.ones(4, np.float32), "blocks.3.attn.qkv.weight": np.ones((2, 3), np.float16)}
    state["blocks.3.attn.qkv.weight"][1, 2] = value
    save_pth(state, tmp_path / "nan.pth")
    loaded = load_state_dict(tmp_path / "nan.pth")
    with pytest.raises(CheckpointError, match=r"nan\.pth: tensor blocks\.3\.attn\.qkv\.weight \(2, 3\) holds NaN"):
        check_finite(loaded, tmp_path / "nan.pth")


def test_convert_refuses_nan_weights_and_leaves_nothing(tmp_path, fixtures_dir):
    state = load_state_dict(fixtures_dir / "vae_tiny.pth")
    state = {name: np.array(array) for name, array in state.items()}
    name = sorted(state)[3]
    state[name].reshape(-1)[0] = np.nan
    save_pth(state, tmp_path / "vae_nan.pth")
    out = tmp_path / "models" / "m"
    result = run_cli(
        ["convert", "--denoiser", fixtures_dir / "denoiser_tiny.pth", "--vae", tmp_path / "vae_nan.pth",
         "--out", out, "--heads", "2"],
        timeout=300,
    )
    assert result.returncode == 1
    line = error_line(result)
    assert "vae_nan.pth" in line and name in line and "NaN" in line
    assert not out.exists() and list(out.parent.iterdir()) == []


# -- safetensors -----------------------------------------------------------------------------


def _raw_safetensors(path, header, data=b""):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


SAFETENSORS_CASES = {
    "negative_shape": ({"w": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}}, "tensor w: invalid shape"),
    "overflowing_shape": (
        {"w": {"dtype": "F32", "shape": [2**32, 2**32, 2**32], "data_offsets": [0, 16]}}, "tensor w: (invalid shape|data offsets .* do not fit)"
    ),
    "float_shape": ({"w": {"dtype": "F32", "shape": [4.0], "data_offsets": [0, 16]}}, "tensor w: invalid shape"),
    "bool_shape": ({"w": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, "tensor w: invalid shape"),
    "string_dtype": ({"w": {"dtype": "F999", "shape": [4], "data_offsets": [0, 16]}}, "tensor w: unsupported dtype"),
    "offsets_outside": (
        {"w": {"dtype": "F32", "shape": [4], "data_offsets": [2**62, 2**62 + 16]}}, "tensor w lies past the end"
    ),
    "negative_offsets": ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [-16, 0]}}, "tensor w: data offsets"),
    "overlapping": (
        {
            "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
            "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
        },
        "overlaps",
    ),
    "extra_field": (
        {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16], "x": [[[[1]]]]}}, "tensor w: malformed"
    ),
    "nested_json": (b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    "long_name": ({MARKER * 100: {"dtype": "F32", "shape": [-1], "data_offsets": [0, 16]}}, "invalid shape"),
    "metadata_not_strings": ({"__metadata__": {"a": {"b": 1}}}, "__metadata__"),
}


@pytest.mark.parametrize("case", sorted(SAFETENSORS_CASES))
def test_bad_safetensors_header_is_one_line_naming_file_and_tensor(tmp_path, case):
    header, expected = SAFETENSORS_CASES[case]
    path = _raw_safetensors(tmp_path / f"{case}.safetensors", header, bytes(32))
    with time_limit(60):
        start = time.monotonic()
        with pytest.raises(CheckpointError) as caught:
            load_state_dict(path)
        assert time.monotonic() - start < 5
    message = str(caught.value)
    import re

    assert str(path) in message and "\n" not in message and len(message) < 400, message
    assert re.search(expected, message), message
    assert MARKER * 3 not in message


def test_safetensors_with_nan_is_loaded_then_refused_at_the_check(tmp_path):
    save_safetensors({"w": np.array([1.0, np.nan], np.float32)}, tmp_path / "n.safetensors")
    with pytest.raises(CheckpointError, match=r"n\.safetensors: tensor w \(2,\) holds NaN"):
        check_finite(load_state_dict(tmp_path / "n.safetensors"), tmp_path / "n.safetensors")


def test_training_checkpoint_with_integer_keyed_optimizer_state_loads(tmp_path):
    """An optimizer's state is keyed by parameter index: small integer keys are harmless to hash
    and accepted; the weights are found under "state_dict"."""
    weights = _tensor_pickle([("w", "0", "FloatStorage", 4, 0, (2, 2), (2, 1))])
    body = weights[2:-1]  # without PROTO and STOP
    optimizer = b"X\x09\x00\x00\x00optimizer}K\x00}X\x04\x00\x00\x00stepK\x01sss"  # {"optimizer": {0: {"step": 1}}}
    pickled = b"\x80\x02}" + optimizer + b"X\x0a\x00\x00\x00state_dict" + body + b"s."
    path = _hostile_pth(tmp_path, "trained.pth", pickled, {"0": np.arange(4, dtype=np.float32)})
    with time_limit(60):
        state = load_state_dict(path)
    assert list(state) == ["w"] and state["w"].tolist() == [[0, 1], [2, 3]]


def test_convert_cancel_is_obeyed_within_a_second_while_reading(tmp_path, fixtures_dir):
    """The QGIS cancel button: ``cancel()`` turns True while a long pickle is being read."""
    from plugin.engine.convert import convert

    slow = _slow_checkpoint(tmp_path)
    reading = []

    def progress(done, total, message):
        if message == "reading the checkpoints":
            reading.append(time.monotonic())

    def cancel():
        return bool(reading) and time.monotonic() > reading[0] + 0.3

    out = tmp_path / "models" / "m"
    with pytest.raises(Cancelled, match="slow.pth"):
        convert(slow, fixtures_dir / "vae_tiny.pth", out, heads=2, progress=progress, cancel=cancel)
    assert time.monotonic() - (reading[0] + 0.3) < 1.0
    assert not out.exists() and (not out.parent.exists() or list(out.parent.iterdir()) == [])


@pytest.mark.parametrize("stage", ["building and writing vae_encoder.onnx", "building and writing denoiser.onnx"])
def test_convert_cancel_is_obeyed_while_building_the_graphs(tmp_path, fixtures_dir, stage):
    """The QGIS cancel button pressed while graphs are built: polled at every weight, so the
    conversion stops before the next one and leaves nothing, not after the whole graph."""
    from plugin.engine.convert import convert

    stages, polls = [], []

    def progress(done, total, message):
        stages.append(message)

    def cancel():
        building = any(message.startswith(stage) for message in stages)
        polls.append(building)
        return building and polls.count(True) > 3  # a few weights in, mid-graph

    out = tmp_path / "models" / "m"
    with pytest.raises(Cancelled, match="cancelled while building copgen_beta"):
        convert(fixtures_dir / "denoiser_tiny.pth", fixtures_dir / "vae_tiny.pth", out, heads=2,
                progress=progress, cancel=cancel)
    assert not out.exists() and list(out.parent.iterdir()) == []
