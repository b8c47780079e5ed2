"""What made an output: package versions, the git commit and the command line, recorded in every file we write."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import shlex
import subprocess
import sys
from pathlib import Path

__all__ = ["versions", "git_commit", "command_line", "utc_now"]

_TRACKED = ("dfs-sim", "numpy", "pandas", "pyarrow", "numba", "scipy", "torch")


def versions() -> dict[str, str]:
    """Versions of Python and of the installed packages that shape results (torch only if already imported)."""
    found = {"python": platform.python_version()}
    for package in _TRACKED:
        if package == "torch" and "torch" not in sys.modules:
            continue
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def git_commit() -> str:
    """The commit of the checkout this package runs from, with ``+dirty`` for local changes; 'unknown' outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def command_line() -> str:
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
