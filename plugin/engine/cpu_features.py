"""What this CPU can do, read from its flags (never from its name).

The fast path selection keys its cached choice on the flags (a changed CPU redoes the
measurement) and the benchmark prints the instruction sets that decide which kernels run.
"""

import hashlib
import platform
from pathlib import Path

# Linux /proc/cpuinfo flag -> the name users read in vendor sheets
ISA_FLAGS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512F",
    "avx512_bf16": "AVX-512 BF16",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
}


def cpu_flags(cpuinfo=None):
    """The flags of the first processor in /proc/cpuinfo (``cpuinfo``: its text), as a
    frozenset; empty where there is no such file (macOS, Windows)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, ARM
            return frozenset(value.split())
    return frozenset()


def isa_summary(flags=None):
    """"AVX2 yes, AVX-512F yes, ..., AMX-INT8 no" for the instruction sets in ISA_FLAGS."""
    flags = cpu_flags() if flags is None else flags
    if not flags:
        return f"unknown ({platform.machine()}: no /proc/cpuinfo flags)"
    return ", ".join(f"{name} {'yes' if flag in flags else 'no'}" for flag, name in ISA_FLAGS.items())


def cpu_key(flags=None):
    """A short digest of the machine type and all of its CPU flags: equal on equal CPUs."""
    flags = cpu_flags() if flags is None else flags
    text = platform.machine() + " " + " ".join(sorted(flags))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
