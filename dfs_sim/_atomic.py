"""Atomic file writes: write under a temporary name in the same folder, flush to disk, then rename.

A reader, or a run that was killed half-way, therefore never sees a half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text"]

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, on error it is removed."""
    final = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(descriptor)
    temporary_path = Path(temporary)
    os.chmod(temporary_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; a finished file gets the usual permissions
    try:
        yield temporary_path
        with open(temporary_path, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary_path, final)
    finally:
        temporary_path.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
