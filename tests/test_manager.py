import hashlib
import json
import sys

import pytest

from plugin.cli import main
from plugin.engine.errors import Cancelled, DownloadError, InputError, ModelError
from plugin.engine.manager import DOWNLOADS, KNOWN_HASHES, ModelManager, default_model_root, load_registry

from _h1_http import FileServer

NAME = "tiny"


@pytest.fixture(scope="module")
def fixture_bytes(fixtures_dir):
    return {
        "denoiser": (fixtures_dir / "denoiser_tiny.pth").read_bytes(),
        "vae": (fixtures_dir / "vae_tiny.pth").read_bytes(),
    }


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _registry(base_url, fixture_bytes, vae_sha256=None):
    """A one-model registry for the tiny fixtures; the VAE's hash is unknown by default."""
    denoiser = fixture_bytes["denoiser"]
    return {
        "models": {
            NAME: {
                "title": "tiny test model",
                "num_heads": 2,
                "sources": {
                    "denoiser": {
                        "file_name": "denoiser_tiny.pth",
                        "url": f"{base_url}/denoiser_tiny.pth",
                        "sha256": _sha256(denoiser),
                        "size": len(denoiser),
                    },
                    "vae": {"file_name": "vae_tiny.pth", "url": f"{base_url}/vae_tiny.pth", "sha256": vae_sha256},
                },
            }
        }
    }


@pytest.fixture
def server(fixture_bytes):
    files = {"/denoiser_tiny.pth": fixture_bytes["denoiser"], "/vae_tiny.pth": fixture_bytes["vae"]}
    with FileServer(files) as running:
        yield running


def _manager(root, registry):
    manager = ModelManager(model_root=root, registry=registry)
    manager.timeout_s, manager.max_attempts, manager.retry_delay_s = 10, 3, 0
    return manager


def _downloads(root):
    folder = root / DOWNLOADS
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def test_install_downloads_converts_and_lists(tmp_path, server, fixture_bytes):
    manager = _manager(tmp_path, _registry(server.url, fixture_bytes))
    calls = []

    folder = manager.install(NAME, progress=lambda done, total, message: calls.append((done, total, message)))

    assert folder == tmp_path / NAME
    info = json.loads((folder / "model.json").read_text())
    assert info["num_heads"] == 2 and info["precision"] == "fp32"
    assert (folder / info["int8"]["file"]).is_file()  # the fast CPU denoiser comes with fp32 installs
    assert info["sources"]["denoiser"]["sha256"] == _sha256(fixture_bytes["denoiser"])
    assert info["sources"]["vae"]["sha256"] == _sha256(fixture_bytes["vae"])
    for file_name in info["files"]:
        assert (folder / file_name).is_file()
    # Byte progress per file reaches its size; conversion steps follow.
    for role, file_name in (("denoiser", "denoiser_tiny.pth"), ("vae", "vae_tiny.pth")):
        done = [d for d, _, message in calls if message == f"downloading {file_name}"]
        assert done == sorted(done) and done[-1] == len(fixture_bytes[role])
    assert any(not message.startswith("downloading") for _, _, message in calls)
    # The checkpoints are gone; the hash of the VAE (unknown to the registry) is recorded.
    assert _downloads(tmp_path) == [KNOWN_HASHES]
    known = json.loads((tmp_path / DOWNLOADS / KNOWN_HASHES).read_text())
    assert known == {f"{server.url}/vae_tiny.pth": _sha256(fixture_bytes["vae"])}
    [listed] = manager.list()
    assert listed["precisions"]["fp32"] == {"installed": True, "path": folder}
    assert listed["precisions"]["fp16"]["installed"] is False
    assert manager.verify(NAME)["model_dir"] == folder
    requests = len(server.requests)
    assert manager.install(NAME) == folder and len(server.requests) == requests  # already installed


def test_interrupted_download_resumes_with_range(tmp_path, server, fixture_bytes):
    half = len(fixture_bytes["denoiser"]) // 2
    server.drop_after["/denoiser_tiny.pth"] = half
    manager = _manager(tmp_path, _registry(server.url, fixture_bytes))

    folder = manager.install(NAME)

    denoiser_requests = [r for path, r in server.requests if path == "/denoiser_tiny.pth"]
    assert denoiser_requests == [None, f"bytes={half}-"]
    info = json.loads((folder / "model.json").read_text())
    assert info["sources"]["denoiser"]["sha256"] == _sha256(fixture_bytes["denoiser"])


def test_cancelled_download_keeps_part_and_resumes(tmp_path, server, fixture_bytes):
    manager = _manager(tmp_path, _registry(server.url, fixture_bytes))
    seen = []

    def cancel():  # after the first chunk of the VAE (a few MB, so several chunks)
        return any(message == "downloading vae_tiny.pth" for _, _, message in seen)

    with pytest.raises(Cancelled, match="vae_tiny.pth"):
        manager.install(NAME, progress=lambda *call: seen.append(call), cancel=cancel)
    assert "vae_tiny.pth.part" in _downloads(tmp_path)
    assert not (tmp_path / NAME).exists()
    kept = (tmp_path / DOWNLOADS / "vae_tiny.pth.part").stat().st_size
    assert 0 < kept < len(fixture_bytes["vae"])

    manager.install(NAME)

    assert server.requests[-1] == ("/vae_tiny.pth", f"bytes={kept}-")
    assert json.loads((tmp_path / NAME / "model.json").read_text())["sources"]["vae"]["sha256"] == _sha256(
        fixture_bytes["vae"]
    )


def test_corrupted_download_is_rejected_and_nothing_installed(tmp_path, server, fixture_bytes):
    good = fixture_bytes["denoiser"]
    bad = bytearray(good)
    bad[len(bad) // 3] ^= 0xFF
    server.files["/denoiser_tiny.pth"] = bytes(bad)
    manager = _manager(tmp_path, _registry(server.url, fixture_bytes))

    with pytest.raises(DownloadError) as caught:
        manager.install(NAME)

    message = str(caught.value)
    assert "denoiser_tiny.pth" in message and _sha256(good) in message and _sha256(bytes(bad)) in message
    assert not (tmp_path / NAME).exists()
    assert _downloads(tmp_path) == []


def test_recorded_hash_rejects_a_changed_file_later(tmp_path, server, fixture_bytes):
    manager = _manager(tmp_path, _registry(server.url, fixture_bytes))
    manager.install(NAME)
    manager.remove(NAME, precision="fp32")  # the model goes, the learned hash stays
    server.files["/vae_tiny.pth"] = fixture_bytes["vae"][:-10] + b"0123456789"

    with pytest.raises(DownloadError, match="checksum mismatch for vae_tiny.pth: expected sha256") as caught:
        manager.install(NAME)
    # the message names the record holding that hash and how to reset it
    assert str(tmp_path / DOWNLOADS / KNOWN_HASHES) in str(caught.value)
    assert f"remove the model {NAME} in every precision" in str(caught.value)
    assert not (tmp_path / NAME).exists()


def test_http_error_names_the_url(tmp_path, server, fixture_bytes):
    del server.files["/vae_tiny.pth"]
    manager = _manager(tmp_path, _registry(server.url, fixture_bytes))
    with pytest.raises(DownloadError, match=r"/vae_tiny.pth: HTTP 404"):
        manager.install(NAME)
    assert not (tmp_path / NAME).exists()


def test_remove_deletes_the_model(tmp_path, server, fixture_bytes):
    manager = _manager(tmp_path, _registry(server.url, fixture_bytes))
    folder = manager.install(NAME)

    # the model, and the VAE checksum learned at its first download (an entry of the record)
    assert manager.remove(NAME) == [folder, tmp_path / DOWNLOADS / KNOWN_HASHES]
    assert json.loads((tmp_path / DOWNLOADS / KNOWN_HASHES).read_text()) == {}

    assert not folder.exists()
    assert manager.list()[0]["precisions"]["fp32"]["installed"] is False
    with pytest.raises(ModelError, match="tiny is not installed"):
        manager.remove(NAME)


def test_verify_detects_a_tampered_onnx_file(tmp_path, server, fixture_bytes):
    manager = _manager(tmp_path, _registry(server.url, fixture_bytes))
    folder = manager.install(NAME)
    decoder = folder / "vae_decoder.onnx"
    data = bytearray(decoder.read_bytes())
    data[-100] ^= 0x01
    decoder.write_bytes(bytes(data))

    with pytest.raises(ModelError, match=r"vae_decoder\.onnx: sha256 .* does not match"):
        manager.verify(NAME)


def test_local_files_install_fp16_without_network(tmp_path, fixtures_dir, fixture_bytes):
    registry = _registry("http://127.0.0.1:9", fixture_bytes)  # nothing listens there
    manager = _manager(tmp_path, registry)

    folder = manager.install(
        NAME,
        precision="fp16",
        local_files={"denoiser": fixtures_dir / "denoiser_tiny.pth", "vae": fixtures_dir / "vae_tiny.pth"},
    )

    assert folder == tmp_path / f"{NAME}-fp16"
    assert json.loads((folder / "model.json").read_text())["precision"] == "fp16"
    assert manager.verify(NAME, precision="fp16")["model_dir"] == folder
    assert (fixtures_dir / "vae_tiny.pth").is_file()  # local files are never deleted


def test_cli_install_verify_list_remove(tmp_path, fixtures_dir, fixture_bytes, capsys):
    registry_file = tmp_path / "registry.json"
    registry_file.write_text(json.dumps(_registry("http://127.0.0.1:9", fixture_bytes)))
    common = ["--model-dir", str(tmp_path / "models"), "--registry", str(registry_file)]
    local = ["--denoiser", str(fixtures_dir / "denoiser_tiny.pth"), "--vae", str(fixtures_dir / "vae_tiny.pth")]

    assert main(["models", "install", NAME, *common, *local]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(tmp_path / "models" / NAME) and "hashing the ONNX files" in err
    assert main(["models", "verify", NAME, *common]) == 0
    assert main(["models", "list", *common]) == 0
    assert "fp32: installed" in capsys.readouterr().out
    assert main(["models", "remove", NAME, *common]) == 0
    assert main(["models", "verify", NAME, *common]) == 1
    assert "missing model.json" in capsys.readouterr().err


def test_default_model_root_is_per_user(monkeypatch, tmp_path):
    monkeypatch.setenv("COPGEN_MODEL_DIR", str(tmp_path / "forced"))
    assert default_model_root() == tmp_path / "forced"
    monkeypatch.delenv("COPGEN_MODEL_DIR")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        assert default_model_root() == tmp_path / "data" / "copgen-beta" / "models"
    from plugin.engine import model_registry

    assert model_registry.REGISTRY_FILE.parent.parent not in default_model_root().parents


def test_shipped_registry_is_valid_and_bad_entries_are_named(fixture_bytes):
    shipped = load_registry()
    source = shipped["models"]["cop-gen-beta"]["sources"]["denoiser"]
    assert source["url"].endswith("/" + source["file_name"])
    broken = _registry("http://127.0.0.1:9", fixture_bytes)
    broken["models"][NAME]["sources"]["vae"]["sha256"] = "not-a-hash"
    with pytest.raises(InputError, match=r"models\.tiny\.sources\.vae\.sha256"):
        load_registry(broken)
    with pytest.raises(InputError, match="unknown model 'nope'"):
        ModelManager(model_root="unused", registry=_registry("http://x", fixture_bytes)).install("nope")


# -- official checkpoints only, unless allowed --------------------------------------------------

OTHER_SHA256 = _sha256(b"stands for the official checkpoint, which the tiny fixture is not")


def _local_files(fixtures_dir):
    return {"denoiser": fixtures_dir / "denoiser_tiny.pth", "vae": fixtures_dir / "vae_tiny.pth"}


def _registry_with_denoiser(fixture_bytes, sha256, file_name="denoiser_tiny.pth"):
    registry = _registry("http://127.0.0.1:9", fixture_bytes)  # nothing listens there
    registry["models"][NAME]["sources"]["denoiser"].update(sha256=sha256, file_name=file_name)
    return registry


def test_local_file_that_is_not_the_official_checkpoint_is_refused(tmp_path, fixtures_dir, fixture_bytes):
    manager = _manager(tmp_path, _registry_with_denoiser(fixture_bytes, OTHER_SHA256))

    with pytest.raises(InputError) as caught:
        manager.install(NAME, local_files=_local_files(fixtures_dir))

    message = str(caught.value)
    assert str(fixtures_dir / "denoiser_tiny.pth") in message
    assert OTHER_SHA256 in message and _sha256(fixture_bytes["denoiser"]) in message
    assert caught.value.field == "allow_unofficial" and "--" not in caught.value.message
    assert list(tmp_path.iterdir()) == []  # nothing converted, downloaded or left behind


def test_allowed_unofficial_model_is_installed_and_verify_says_so(tmp_path, fixtures_dir, fixture_bytes):
    manager = _manager(tmp_path, _registry_with_denoiser(fixture_bytes, OTHER_SHA256))

    folder = manager.install(NAME, local_files=_local_files(fixtures_dir), allow_unofficial=True)

    record = json.loads((folder / "install.json").read_text())
    assert record["unofficial"] is True
    assert record["sources"]["denoiser"] == {
        "file": "denoiser_tiny.pth",
        "sha256": _sha256(fixture_bytes["denoiser"]),
        "origin": "local",
        "official": False,
    }
    assert record["sources"]["vae"]["official"] is None  # the registry lists no sha256 for it
    summary = manager.verify(NAME)
    assert summary["unofficial"] is True
    assert summary["sources"]["denoiser"]["status"] == "unofficial"
    assert summary["sources"]["vae"]["status"] == "unverified"


def test_verify_checks_sources_whatever_their_file_name(tmp_path, fixtures_dir, fixture_bytes):
    official = _sha256(fixture_bytes["denoiser"])
    manager = _manager(tmp_path, _registry_with_denoiser(fixture_bytes, official, file_name="nnet_ema.pth"))
    manager.install(NAME, local_files=_local_files(fixtures_dir))
    summary = manager.verify(NAME)
    assert summary["unofficial"] is False and summary["sources"]["denoiser"]["status"] == "official"

    # the registry now lists another official denoiser: the installed model no longer matches it
    changed = _manager(tmp_path, _registry_with_denoiser(fixture_bytes, OTHER_SHA256, file_name="nnet_ema.pth"))
    with pytest.raises(ModelError) as caught:
        changed.verify(NAME)
    message = str(caught.value)
    assert "denoiser_tiny.pth" in message and official in message and OTHER_SHA256 in message


def test_cli_refuses_then_allows_an_unofficial_checkpoint(tmp_path, fixtures_dir, fixture_bytes, capsys):
    registry_file = tmp_path / "registry.json"
    registry_file.write_text(json.dumps(_registry_with_denoiser(fixture_bytes, OTHER_SHA256)))
    common = ["--model-dir", str(tmp_path / "models"), "--registry", str(registry_file)]
    local = ["--denoiser", str(fixtures_dir / "denoiser_tiny.pth"), "--vae", str(fixtures_dir / "vae_tiny.pth")]

    assert main(["models", "install", NAME, *common, *local]) == 1
    assert OTHER_SHA256 in capsys.readouterr().err
    assert not (tmp_path / "models" / NAME).exists()
    assert main(["models", "install", NAME, *common, *local, "--allow-unofficial"]) == 0
    capsys.readouterr()
    assert main(["models", "verify", NAME, *common]) == 0
    out = capsys.readouterr().out
    assert "denoiser: converted from denoiser_tiny.pth" in out and "unofficial model" in out


# -- servers that cannot be reached --------------------------------------------------------------


@pytest.fixture
def count_requests(monkeypatch):
    """Counts urlopen calls (connection attempts, each one a request)."""
    import urllib.request

    calls = []
    real = urllib.request.urlopen

    def counting(request, *args, **kwargs):
        calls.append(request.full_url)
        return real(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", counting)
    return calls


def _assert_suggests_local_files(error, url):
    """The engine names the field; the faces name their own option (see test_faces)."""
    from plugin.commands.flags import describe

    assert url in error.message and "install from local files" in error.message
    assert error.field == "local_files"
    assert describe(error).startswith("--denoiser FILE --vae FILE: ")


def test_unresolvable_host_fails_at_once_and_suggests_local_files(tmp_path, fixture_bytes, count_requests, monkeypatch):
    import socket

    host = "models.copgen-test.invalid"
    real = socket.getaddrinfo

    def offline(name, *args, **kwargs):  # what an offline machine answers
        if name == host:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    manager = _manager(tmp_path, _registry(f"http://{host}", fixture_bytes))
    manager.max_attempts = 5

    with pytest.raises(DownloadError) as caught:
        manager.install(NAME)

    assert count_requests == [f"http://{host}/denoiser_tiny.pth"]
    _assert_suggests_local_files(caught.value, f"http://{host}/denoiser_tiny.pth")
    assert not (tmp_path / NAME).exists()


def test_refused_connection_is_retried_once_and_suggests_local_files(tmp_path, fixture_bytes, count_requests):
    manager = _manager(tmp_path, _registry("http://127.0.0.1:9", fixture_bytes))  # nothing listens there
    manager.max_attempts = 5

    with pytest.raises(DownloadError) as caught:
        manager.install(NAME)

    assert count_requests == ["http://127.0.0.1:9/denoiser_tiny.pth"] * 2
    _assert_suggests_local_files(caught.value, "http://127.0.0.1:9/denoiser_tiny.pth")


def test_install_reads_each_checkpoint_once_for_its_hash(tmp_path, server, fixture_bytes, monkeypatch):
    """Downloads are hashed as they arrive; conversion reuses those hashes instead of reading
    the (1.15 GB in real life) checkpoints again."""
    import plugin.engine.convert as convert_module

    def no_second_read(path):
        raise AssertionError(f"{path} hashed again")

    monkeypatch.setattr(convert_module, "sha256_file", no_second_read)
    manager = _manager(tmp_path, _registry(server.url, fixture_bytes))
    folder = manager.install(NAME)
    info = json.loads((folder / "model.json").read_text())
    assert info["sources"]["denoiser"]["sha256"] == _sha256(fixture_bytes["denoiser"])
    assert info["sources"]["vae"]["sha256"] == _sha256(fixture_bytes["vae"])


def test_a_resumed_download_is_hashed_once(tmp_path, server, fixture_bytes, monkeypatch):
    """Checking that a .part kept by an earlier install is the start of the file (1.15 GB in real
    life) takes its hash; the final check reuses it instead of reading the file again."""
    import plugin.engine.downloads as downloads_module

    manager = _manager(tmp_path, _registry(server.url, fixture_bytes, vae_sha256=_sha256(fixture_bytes["vae"])))
    seen = []

    def cancel():  # after the first chunk of the VAE: its .part is kept
        return any(message == "downloading vae_tiny.pth" for _, _, message in seen)

    with pytest.raises(Cancelled):
        manager.install(NAME, progress=lambda *call: seen.append(call), cancel=cancel)
    assert "vae_tiny.pth.part" in _downloads(tmp_path)
    hashed = []
    real = downloads_module.sha256_file
    monkeypatch.setattr(downloads_module, "sha256_file",
                        lambda path, cancel=None: hashed.append(path.name) or real(path, cancel))
    manager.install(NAME)
    assert hashed.count("vae_tiny.pth.part") == 1, hashed
