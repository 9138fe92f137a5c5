"""Downloads under faults, against a local HTTP server on 127.0.0.1: concurrent installs, a server
without Content-Length, a hash-less file served wrong then right, stale or foreign partial files,
and an install killed with kill -9."""

import json
import os

import pytest
from _faults import error_line, run_cli, start_cli, time_limit, wait_for, kill9_when, each_test_time_limit  # noqa: F401 (autouse fixture)

from plugin.engine.errors import CheckpointError, DownloadError
from plugin.engine.manager import DOWNLOADS, KNOWN_HASHES, LOCK_FILE

from test_manager import NAME, _manager, _sha256, fixture_bytes, server  # noqa: F401 (fixtures)


def _registry(base_url, fixture_bytes, vae_size=None):
    denoiser = fixture_bytes["denoiser"]
    return {"models": {NAME: {"title": "tiny", "num_heads": 2, "sources": {
        "denoiser": {"file_name": "denoiser_tiny.pth", "url": f"{base_url}/denoiser_tiny.pth",
                     "sha256": _sha256(denoiser), "size": len(denoiser)},
        # no published sha256: learned on first use
        "vae": {"file_name": "vae_tiny.pth", "url": f"{base_url}/vae_tiny.pth", "sha256": None, "size": vae_size},
    }}}}


def _cli_args(tmp_path, registry, *extra):
    registry_file = tmp_path / "registry.json"
    registry_file.write_text(json.dumps(registry))
    return ["models", *extra, "--model-dir", tmp_path / "models", "--registry", registry_file]


def _entries(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_two_concurrent_installs_one_runs_the_other_names_its_process(tmp_path, server, fixture_bytes):
    server.chunk_delay_s["/vae_tiny.pth"] = 0.03  # about 2 s for the VAE
    args = _cli_args(tmp_path, _registry(server.url, fixture_bytes), "install", NAME)
    lock = tmp_path / "models" / LOCK_FILE
    first = start_cli(args)
    try:
        # the lock names "PID on HOST"
        wait_for(lambda: lock.is_file() and lock.read_text().split()[:1] == [str(first.pid)], 60, "the first install's lock")
        second = run_cli(args, timeout=60)
        assert second.returncode == 1
        line = error_line(second)
        assert "another installation is running" in line and f"process {first.pid}" in line and str(lock) in line
        _, err = first.communicate(timeout=240)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    # one model, verified; the VAE's hash learned once, from the file on disk
    root = tmp_path / "models"
    assert _entries(root) == [DOWNLOADS, NAME]
    assert _entries(root / DOWNLOADS) == [KNOWN_HASHES]
    known = json.loads((root / DOWNLOADS / KNOWN_HASHES).read_text())
    assert known == {f"{server.url}/vae_tiny.pth": _sha256(fixture_bytes["vae"])}
    verify = run_cli(_cli_args(tmp_path, _registry(server.url, fixture_bytes), "verify", NAME), timeout=120)
    assert verify.returncode == 0, verify.stderr


def test_server_without_content_length_is_cut_at_the_registry_size(tmp_path, server, fixture_bytes):
    server.no_length.add("/denoiser_tiny.pth")
    server.files["/denoiser_tiny.pth"] = fixture_bytes["denoiser"] + b"\0" * (8 << 20)  # a long answer
    manager = _manager(tmp_path, _registry(server.url, fixture_bytes))
    with time_limit(120), pytest.raises(DownloadError) as caught:
        manager.install(NAME)
    assert "sends more than the" in str(caught.value) and "denoiser_tiny.pth" in str(caught.value)
    assert _entries(tmp_path / DOWNLOADS) == [] and not (tmp_path / NAME).exists()


def test_server_without_content_length_serving_the_file_installs(tmp_path, server, fixture_bytes):
    server.no_length.update({"/denoiser_tiny.pth", "/vae_tiny.pth"})
    manager = _manager(tmp_path, _registry(server.url, fixture_bytes))
    with time_limit(240):
        folder = manager.install(NAME)
    assert manager.verify(NAME)["model_dir"] == folder


def test_hashless_file_served_wrong_then_right(tmp_path, server, fixture_bytes):
    portal = b"<html><body>Please log in to the hotel Wi-Fi</body></html>" * 20
    server.files["/vae_tiny.pth"] = portal
    args = _cli_args(tmp_path, _registry(server.url, fixture_bytes), "install", NAME)
    root = tmp_path / "models"

    wrong = run_cli(args, timeout=240)
    assert wrong.returncode == 1
    assert "vae_tiny.pth" in error_line(wrong)
    # nothing learned from the bad file, and it is not kept to be trusted next time
    assert not (root / DOWNLOADS / KNOWN_HASHES).exists()
    assert _entries(root / DOWNLOADS) == ["denoiser_tiny.pth"]  # verified, reused by the next install
    assert not (root / NAME).exists()

    server.files["/vae_tiny.pth"] = fixture_bytes["vae"]
    right = run_cli(args, timeout=240)
    assert right.returncode == 0, right.stderr
    known = json.loads((root / DOWNLOADS / KNOWN_HASHES).read_text())
    assert known == {f"{server.url}/vae_tiny.pth": _sha256(fixture_bytes["vae"])}

    # models remove forgets the learned hash with the model
    removed = run_cli(_cli_args(tmp_path, _registry(server.url, fixture_bytes), "remove", NAME), timeout=60)
    assert removed.returncode == 0, removed.stderr
    assert json.loads((root / DOWNLOADS / KNOWN_HASHES).read_text()) == {}


def test_a_hashless_file_that_is_not_a_checkpoint_is_not_trusted(tmp_path, server, fixture_bytes):
    server.files["/vae_tiny.pth"] = b"not a checkpoint" * 100
    manager = _manager(tmp_path, _registry(server.url, fixture_bytes))
    with pytest.raises(CheckpointError, match="vae_tiny.pth"):
        manager.install(NAME)
    assert manager._known_hashes() == {}


def test_oversize_part_answered_416_is_discarded_and_downloaded_again(tmp_path, server, fixture_bytes):
    downloads = tmp_path / DOWNLOADS
    downloads.mkdir(parents=True)
    (downloads / "vae_tiny.pth.part").write_bytes(fixture_bytes["vae"] + b"junk")  # no size in the registry
    manager = _manager(tmp_path, _registry(server.url, fixture_bytes))
    with time_limit(240):
        folder = manager.install(NAME)
    vae_requests = [r for path, r in server.requests if path == "/vae_tiny.pth"]
    assert vae_requests == [f"bytes={len(fixture_bytes['vae']) + 4}-", None]
    info = json.loads((folder / "model.json").read_text())
    assert info["sources"]["vae"]["sha256"] == _sha256(fixture_bytes["vae"])


def test_part_that_is_not_a_prefix_is_discarded_and_restarted(tmp_path, server, fixture_bytes):
    downloads = tmp_path / DOWNLOADS
    downloads.mkdir(parents=True)
    half = len(fixture_bytes["denoiser"]) // 2
    (downloads / "denoiser_tiny.pth.part").write_bytes(b"\x55" * half)  # from another file
    manager = _manager(tmp_path, _registry(server.url, fixture_bytes))
    with time_limit(240):
        folder = manager.install(NAME)
    denoiser_requests = [r for path, r in server.requests if path == "/denoiser_tiny.pth"]
    assert denoiser_requests == [f"bytes={half}-", None]
    assert json.loads((folder / "model.json").read_text())["sources"]["denoiser"]["sha256"] == _sha256(
        fixture_bytes["denoiser"]
    )


def test_install_killed_mid_download_then_a_normal_install(tmp_path, server, fixture_bytes):
    server.chunk_delay_s["/vae_tiny.pth"] = 0.05
    args = _cli_args(tmp_path, _registry(server.url, fixture_bytes), "install", NAME)
    part = tmp_path / "models" / DOWNLOADS / "vae_tiny.pth.part"
    child = start_cli(args)
    kill9_when(child, lambda: part.is_file() and part.stat().st_size > (1 << 20), "a partial download")
    kept = part.stat().st_size
    assert 0 < kept < len(fixture_bytes["vae"])
    server.chunk_delay_s.clear()
    again = run_cli(args, timeout=240)
    assert again.returncode == 0, again.stderr
    assert ("/vae_tiny.pth", f"bytes={kept}-") in server.requests  # resumed, not restarted
    root = tmp_path / "models"
    assert _entries(root) == [DOWNLOADS, NAME] and _entries(root / DOWNLOADS) == [KNOWN_HASHES]
    assert [name for name in os.listdir(root) if name.startswith(".")] == []


def test_unsized_download_without_content_length_is_cut_at_the_hard_limit(tmp_path, server, fixture_bytes, monkeypatch):
    from plugin.engine import downloads as downloads_module

    monkeypatch.setattr(downloads_module, "MAX_UNSIZED_DOWNLOAD", 1 << 20)
    server.no_length.add("/vae_tiny.pth")  # the VAE has no size in this registry
    manager = _manager(tmp_path, _registry(server.url, fixture_bytes))
    with pytest.raises(DownloadError, match=r"more than the 1048576 bytes any checkpoint may have for vae_tiny\.pth"):
        manager.install(NAME)
    assert _entries(tmp_path / DOWNLOADS) == ["denoiser_tiny.pth"] and not (tmp_path / NAME).exists()


def test_remove_forgets_a_learned_hash_even_when_nothing_is_installed(tmp_path, server, fixture_bytes):
    """The reset a checksum-mismatch message points to: it works while the model is not
    installed (the mismatch kept it from being installed)."""
    args = _cli_args(tmp_path, _registry(server.url, fixture_bytes), "install", NAME)
    assert run_cli(args, timeout=240).returncode == 0
    remove_fp32 = _cli_args(tmp_path, _registry(server.url, fixture_bytes), "remove", NAME, "--precision", "fp32")
    assert run_cli(remove_fp32, timeout=60).returncode == 0
    server.files["/vae_tiny.pth"] = fixture_bytes["vae"] + b"changed"
    mismatch = run_cli(args, timeout=240)
    assert mismatch.returncode == 1
    line = error_line(mismatch)
    assert "checksum mismatch for vae_tiny.pth" in line and KNOWN_HASHES in line and f"remove the model {NAME} in every precision" in line
    reset = run_cli(_cli_args(tmp_path, _registry(server.url, fixture_bytes), "remove", NAME), timeout=60)
    assert reset.returncode == 0, reset.stderr
    assert "forgot the checksums learned" in reset.stdout
    assert json.loads((tmp_path / "models" / DOWNLOADS / KNOWN_HASHES).read_text()) == {}


def test_remove_waits_for_no_install(tmp_path, server, fixture_bytes):
    """remove is refused while an install holds the model root."""
    from plugin.engine.errors import ModelError
    from plugin.engine.manager import InstallLock

    manager = _manager(tmp_path, _registry(server.url, fixture_bytes))
    manager.install(NAME)
    with InstallLock(tmp_path):
        child = run_cli(["models", "remove", NAME, "--model-dir", tmp_path, "--registry", _registry_file(tmp_path, server, fixture_bytes)], timeout=60)
    assert child.returncode == 1 and f"process {os.getpid()}" in error_line(child)
    assert (tmp_path / NAME / "model.json").is_file()
    with pytest.raises(ModelError, match="not installed"):
        manager.remove("tiny", precision="fp16")


def _registry_file(tmp_path, server, fixture_bytes):
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(_registry(server.url, fixture_bytes)))
    return path
