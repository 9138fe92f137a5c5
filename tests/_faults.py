"""Helpers of the fault-injection tests: the CLI in a child process with a time limit, a time
limit for in-process tests (a hang fails the run instead of stalling it), and a small tmpfs."""

import faulthandler
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(args, timeout, env=None, **kwargs):
    """``python -m plugin ARGS`` with a hard time limit; returns CompletedProcess (text)."""
    full_env = {**os.environ, "GDAL_PAM_ENABLED": "NO", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "plugin", *map(str, args)],
        cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout, **kwargs,
    )


def start_cli(args, env=None):
    """The CLI as a running child (for kill -9 tests)."""
    full_env = {**os.environ, "GDAL_PAM_ENABLED": "NO", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "plugin", *map(str, args)],
        cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for(condition, timeout, what):
    """Poll ``condition()`` until true; fail after ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def kill9_when(child, condition, what, timeout=120):
    """kill -9 the child process as soon as ``condition()`` holds (failing if it ends first)."""
    try:
        wait_for(lambda: condition() or child.poll() is not None, timeout, what)
        assert child.poll() is None, f"finished before {what}: {child.communicate()[1][-2000:]}"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def error_line(result):
    """The one error line a failed command printed last on stderr (progress lines may come
    before it), asserting there is no traceback."""
    lines = [line for line in result.stderr.replace("\r", "\n").splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert lines and lines[-1].startswith("error: "), result.stderr
    assert sum(line.startswith("error") for line in lines) == 1, result.stderr
    return lines[-1]


_deadlines = []  # monotonic deadlines of the time limits in force, innermost last


@contextmanager
def time_limit(seconds):
    """Abort the whole test process (with every thread's traceback) if the block runs past
    ``seconds``: works even when the block is stuck in C code. Limits nest: the outer one is
    re-armed with what is left of it when an inner one ends."""
    deadline = time.monotonic() + seconds
    if _deadlines:
        deadline = min(deadline, _deadlines[-1])
    _deadlines.append(deadline)
    faulthandler.dump_traceback_later(max(deadline - time.monotonic(), 0.1), exit=True)
    try:
        yield
    finally:
        _deadlines.pop()
        faulthandler.cancel_dump_traceback_later()
        if _deadlines:
            faulthandler.dump_traceback_later(max(_deadlines[-1] - time.monotonic(), 0.1), exit=True)


@pytest.fixture(autouse=True)
def each_test_time_limit():
    """Imported by the fault test modules: every test there has a time limit (300 s)."""
    with time_limit(300):
        yield


@contextmanager
def small_tmpfs(parent, size_kb):
    """A tmpfs of ``size_kb`` mounted under ``parent`` (root only), or None where mounting is
    not allowed; unmounted afterwards."""
    mount_point = Path(parent) / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    mounted = False
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mount_point)],
            capture_output=True, timeout=30,
        )
        mounted = result.returncode == 0
    try:
        yield mount_point if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)
        mount_point.rmdir()
