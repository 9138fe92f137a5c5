import builtins
import json
import os
import pickle
import struct

import numpy as np
import pytest

from plugin.engine.checkpoint import load_state_dict
from checkpoint_write import save_pth, save_safetensors, state_dict_pickle, write_torch_zip
from plugin.engine.errors import CheckpointError


@pytest.fixture(scope="module")
def vae_state(fixtures_dir):
    return load_state_dict(fixtures_dir / "vae_tiny.pth")


def _mixed_state():
    rng = np.random.default_rng(0)
    return {
        "conv.weight": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
        "half": rng.standard_normal((5, 7)).astype(np.float16),
        "double": rng.standard_normal(4),
        "steps": np.arange(6, dtype=np.int64),
        "mask": np.array([True, False, True]),
        "bytes": np.arange(9, dtype=np.uint8).reshape(3, 3),
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }


def _assert_same(loaded, original):
    assert list(loaded) == list(original)
    for name, array in original.items():
        assert loaded[name].dtype == array.dtype, name
        assert loaded[name].shape == array.shape, name
        np.testing.assert_array_equal(loaded[name], array, err_msg=name)


def test_tiny_vae_fixture_loads_in_ldm_layout(fixtures_dir, vae_state):
    readme = json.loads((fixtures_dir / "README.json").read_text())["vae_ddconfig"]
    ch = readme["ch"]
    assert vae_state["encoder.conv_in.weight"].shape == (ch, readme["in_channels"], 3, 3)
    assert vae_state["quant_conv.weight"].shape == (2 * readme["z_channels"], 2 * readme["z_channels"], 1, 1)
    assert vae_state["decoder.conv_out.weight"].shape == (readme["out_ch"], ch, 3, 3)
    assert all(array.dtype == np.float32 for array in vae_state.values())
    # Zero-copy views into the mapped file: read-only and not owning their memory.
    weight = vae_state["encoder.conv_in.weight"]
    assert not weight.flags.writeable and not weight.flags.owndata
    assert np.isfinite(weight).all() and weight.std() > 0


def test_tiny_denoiser_fixture_loads(fixtures_dir):
    config = json.loads((fixtures_dir / "README.json").read_text())["denoiser_config"]
    state = load_state_dict(fixtures_dir / "denoiser_tiny.pth")
    tokens = config["num_modalities"] * (1 + (config["img_size"] // config["patch_size"]) ** 2)
    assert state["pos_embed"].shape == (1, tokens, config["embed_dim"])
    assert state["patch_embeds.0.proj.weight"].shape == (config["embed_dim"], config["in_chans"], 2, 2)
    qkv = [name for name in state if name.endswith("attn.qkv.weight")]
    assert len(qkv) == config["depth"] + 1  # depth // 2 in blocks, the mid block, depth // 2 out blocks
    assert all(state[name].shape == (3 * config["embed_dim"], config["embed_dim"]) for name in qkv)


def test_pth_round_trip_keeps_names_order_dtypes_and_values(tmp_path, vae_state):
    state = dict(_mixed_state(), **{name: vae_state[name] for name in list(vae_state)[:5]})
    save_pth(state, tmp_path / "mixed.pth")
    _assert_same(load_state_dict(tmp_path / "mixed.pth"), state)


def test_pth_members_are_aligned_and_stored(tmp_path):
    import zipfile

    save_pth(_mixed_state(), tmp_path / "aligned.pth")
    with zipfile.ZipFile(tmp_path / "aligned.pth") as archive, open(tmp_path / "aligned.pth", "rb") as raw:
        for info in archive.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            raw.seek(info.header_offset + 26)
            name_len, extra_len = struct.unpack("<HH", raw.read(4))
            assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0, info.filename


@pytest.mark.parametrize("key", ["state_dict", "model"])
def test_nested_state_dict_is_unwrapped(tmp_path, key):
    state = _mixed_state()
    save_pth(state, tmp_path / "nested.pth", nest_under=key)
    _assert_same(load_state_dict(tmp_path / "nested.pth"), state)


class _RunsCommand:
    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


@pytest.mark.parametrize("function", ["system", "eval"])
def test_pickle_that_would_run_code_is_refused(tmp_path, function):
    marker = tmp_path / "marker"
    if function == "system":  # protocol 2: GLOBAL opcode
        payload = pickle.dumps(_RunsCommand(os.system, f"touch '{marker}'"), protocol=2)
        refused = f"{os.system.__module__}.system"
    else:  # protocol 4: STACK_GLOBAL opcode
        payload = pickle.dumps(_RunsCommand(builtins.eval, f"open({str(marker)!r}, 'w').close()"), protocol=4)
        refused = "builtins.eval"
    path = tmp_path / "evil.pth"
    write_torch_zip(path, payload, {})
    with pytest.raises(CheckpointError) as caught:
        load_state_dict(path)
    assert str(path) in str(caught.value) and refused in str(caught.value)
    assert not marker.exists()


def test_truncated_pth_is_rejected_naming_the_file(tmp_path):
    save_pth(_mixed_state(), tmp_path / "whole.pth")
    data = (tmp_path / "whole.pth").read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pth.*(truncated|corrupt)"):
        load_state_dict(cut)


def test_missing_storage_is_named(tmp_path):
    pickled = state_dict_pickle([("a", "0", "FloatStorage", (2,)), ("b", "1", "FloatStorage", (3,))])
    path = tmp_path / "missing.pth"
    write_torch_zip(path, pickled, {"0": np.zeros(2, np.float32)})
    with pytest.raises(CheckpointError, match=r"missing.pth: storage data/1 is missing"):
        load_state_dict(path)


def test_storage_shorter_than_its_tensor_is_rejected(tmp_path):
    pickled = state_dict_pickle([("a", "0", "FloatStorage", (4, 4))])
    path = tmp_path / "short.pth"
    write_torch_zip(path, pickled, {"0": np.zeros(10, np.float32)})
    with pytest.raises(CheckpointError, match=r"short.pth: storage data/0 holds 40 bytes"):
        load_state_dict(path)


def test_legacy_pickle_and_other_files_are_rejected(tmp_path):
    legacy = tmp_path / "legacy.pth"
    legacy.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(CheckpointError, match="legacy.pth: legacy"):
        load_state_dict(legacy)
    text = tmp_path / "notes.pth"
    text.write_text("not weights")
    with pytest.raises(CheckpointError, match="notes.pth: neither"):
        load_state_dict(text)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.safetensors"):
        load_state_dict(empty)
    with pytest.raises(CheckpointError, match="absent.pth: checkpoint file not found"):
        load_state_dict(tmp_path / "absent.pth")


def test_safetensors_round_trip(tmp_path, vae_state):
    state = dict(_mixed_state(), **{name: vae_state[name] for name in list(vae_state)[-5:]})
    save_safetensors(state, tmp_path / "weights.safetensors")
    loaded = load_state_dict(tmp_path / "weights.safetensors")
    _assert_same(loaded, state)
    assert not loaded["conv.weight"].flags.writeable


def _raw_safetensors(path, header, data):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


def test_safetensors_bfloat16_becomes_float32(tmp_path):
    values = np.array([1.0, -2.5, 3.140625, 0.0], dtype=np.float32)  # exact in bfloat16
    bits = (values.view(np.uint32) >> 16).astype("<u2")
    path = tmp_path / "bf16.safetensors"
    _raw_safetensors(path, {"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}}, bits.tobytes())
    loaded = load_state_dict(path)["w"]
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, values.reshape(2, 2))


def test_truncated_safetensors_names_the_tensor(tmp_path):
    header = {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
    }
    path = tmp_path / "cut.safetensors"
    _raw_safetensors(path, header, bytes(12))
    with pytest.raises(CheckpointError, match="cut.safetensors: truncated.*tensor b"):
        load_state_dict(path)


def test_dropping_the_state_dict_releases_the_file_mapping(fixtures_dir):
    # A pinned mapping keeps the whole 1.15 GB denoiser resident (and the file locked on Windows).
    import gc
    import mmap
    import weakref

    def open_mappings():
        return {id(obj): weakref.ref(obj) for obj in gc.get_objects() if isinstance(obj, mmap.mmap) and not obj.closed}

    before = open_mappings()
    state = load_state_dict(fixtures_dir / "denoiser_tiny.pth")
    new = [ref for key, ref in open_mappings().items() if key not in before]
    assert len(new) == 1
    del state
    gc.collect()
    assert new[0]() is None or new[0]().closed
