"""``python -m plugin``: the headless command line.

Each command lives in its own module under :mod:`plugin.commands` and exposes
``add_parser(subparsers)``, which registers the sub-command and sets ``func`` on it;
``func(args)`` returns the process exit code.
"""

import argparse
import errno
import importlib
import os
import re
import signal
import sys
import threading
import traceback
from contextlib import contextmanager

from . import __version__
from .commands.flags import describe
from .engine.errors import CopGenError

# Modules under plugin.commands, in the order --help lists them.
COMMAND_MODULES = ("demo", "models", "convert", "prepare", "generate", "cells", "dataset", "bench")


class OneLineParser(argparse.ArgumentParser):
    """argparse's refusals (a bad choice, a missing option) as one line like every other error,
    pointing at --help instead of printing the usage block. Sub-commands inherit the class."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = OneLineParser(
        prog="python -m plugin",
        description="COP-GEN-Beta for QGIS: headless commands (no QGIS needed).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show Python tracebacks (for reporting a bug)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f".commands.{name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.commands.{name}":
                continue  # command not built yet
            raise
        module.add_parser(subparsers)
    return parser


# A value that starts with a minus sign: argparse takes "-49.2,-25.5,..." for an unknown option
# ("--extent: expected one argument"); a coordinate list west or south of 0 is one.
NEGATIVE_VALUE = re.compile(r"-\.?\d[\d.,eE+-]*")


def attach_negative_values(argv):
    """``--option -1.5,...`` as ``--option=-1.5,...``, so coordinate lists west or south of 0
    read as the values they are."""
    joined = []
    for token in argv:
        previous = joined[-1] if joined else ""
        if NEGATIVE_VALUE.fullmatch(token) and previous.startswith("--") and "=" not in previous:
            joined[-1] = f"{previous}={token}"
        else:
            joined.append(token)
    return joined


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(attach_negative_values(sys.argv[1:] if argv is None else list(argv)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if not args.debug:
        # GDAL prints its errors on stderr as well as raising them: the one line below suffices
        os.environ.setdefault("CPL_LOG", os.devnull)
    try:
        with sigterm_as_interrupt():
            return args.func(args) or 0
    except CopGenError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {describe(exc, args)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: one line, the traceback on request
        if args.debug:
            raise
        if isinstance(exc, OSError) and exc.filename:
            # the file system refused (permission, missing folder, full disk): not a bug
            print(f"error: {_os_error_text(exc)}", file=sys.stderr)
            return 1
        print(
            f"error: internal error ({type(exc).__name__}: {str(exc)[:200]}); run the command again "
            "with --debug before the command name (python -m plugin --debug ...) to see the traceback, "
            "and report it",
            file=sys.stderr,
        )
        return 70  # EX_SOFTWARE


def _os_error_text(exc):
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full: cannot write {exc.filename} (no space left on the device)"
    return f"{exc.filename}: {exc.strerror or exc}"


@contextmanager
def sigterm_as_interrupt():
    """Turn SIGTERM (kill, a job scheduler) into KeyboardInterrupt, so the run cleans up its
    partial outputs as it does on Ctrl-C. Only the main thread can install signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
