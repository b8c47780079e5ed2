"""Output folders: refuse unsafe ones before anything is written, claim a folder for one set of inputs, and write
into it atomically (Parquet tables, the manifest)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dfs_sim._atomic import atomic_path, atomic_write_text
from dfs_sim.errors import OutputError
from dfs_sim.provenance import git_commit, utc_now, versions

__all__ = [
    "MANIFEST",
    "claim_output_folder",
    "mark_failed",
    "read_table_or_none",
    "release_output_folder",
    "write_manifest",
    "write_table",
]

MANIFEST = "manifest.json"
LOCK = ".lock"


def claim_output_folder(out: Path, fingerprint: str, *, force: bool, subfolder: str, command: str = "") -> Path:
    """Check ``out`` and claim it for the inputs with ``fingerprint``; returns ``out``.

    Refused (``OutputError``): a path that is a file, a place without write permission, and a non-empty folder whose
    manifest names other inputs (unless ``force``). The folder's manifest is then marked "running" for these inputs,
    so that a rerun after an interruption may resume in it, and temporaries left by a killed run are removed.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(out, "the output path exists and is not a folder")
    existing = next((parent for parent in (out, *out.absolute().parents) if parent.exists()), Path("."))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(existing, "no permission to write here")
    if out.is_dir() and any(out.iterdir()) and not force:
        try:
            previous = json.loads((out / MANIFEST).read_text()).get("inputs_fingerprint")
        except (OSError, ValueError, AttributeError):
            previous = None
        if previous != fingerprint:
            raise OutputError(
                out, "the folder holds other files or results of other inputs; choose another --out or pass --force"
            )
    try:
        (out / subfolder).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(out, f"cannot create the output folder ({error.strerror})") from None
    _lock(out)
    atomic_write_text(
        out / MANIFEST,
        json.dumps({"inputs_fingerprint": fingerprint, "status": "running", "command": command}, indent=2) + "\n",
    )
    for leftover in (*out.glob(".*.tmp"), *out.glob("*/.*.tmp")):
        leftover.unlink(missing_ok=True)  # no other run writes here: the lock is ours
    return out


def write_table(table: pa.Table | pd.DataFrame, path: Path) -> None:
    """Write a Parquet file (zstd) atomically; a frame is written without its index."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    with atomic_path(path) as temporary:
        pq.write_table(table, temporary, compression="zstd")


def read_table_or_none(path: Path) -> pa.Table | None:
    """A finished Parquet file, or None when it is missing or damaged (it is then computed again, never trusted)."""
    if not path.is_file():
        return None
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError):
        return None


def write_manifest(out: Path, manifest: dict) -> None:
    """``manifest`` with the versions, git commit, time and status "complete" added, atomically as OUT/manifest.json
    (written last: a folder whose manifest says "complete" holds every output)."""
    manifest = {
        **manifest,
        "versions": versions(),
        "git_commit": git_commit(),
        "created": utc_now(),
        "status": "complete",
    }
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def mark_failed(out: Path, reason: str) -> None:
    """Record in the manifest that the run writing ``out`` stopped, with its one-line ``reason`` (status "failed");
    the finished parts stay, so a rerun resumes from them."""
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = {}
    if not isinstance(manifest, dict) or manifest.get("status") == "complete":
        return
    manifest.update(status="failed", error=reason.splitlines()[0] if reason else "", stopped=utc_now())
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def release_output_folder(out: Path) -> None:
    """Give the folder back (call when the run ends, however it ends)."""
    (out / LOCK).unlink(missing_ok=True)


def _lock(out: Path) -> None:
    """One run writes into a folder at a time; the lock of a run that was killed (its process is gone) is taken over."""
    lock = out / LOCK
    for _ in range(2):
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner and owner != os.getpid() and _alive(owner):
                raise OutputError(
                    out, f"another run (process {owner}) is writing here; wait for it or use another --out"
                ) from None
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(descriptor, "w") as handle:
            handle.write(str(os.getpid()))
        return
    raise OutputError(out, "cannot take the folder's lock")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
