"""Output folders: refuse unsafe ones before anything is written, and claim a folder for one set of inputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

from dfs_sim._atomic import atomic_write_text
from dfs_sim.errors import OutputError

__all__ = ["MANIFEST", "claim_output_folder"]

MANIFEST = "manifest.json"


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
            raise OutputError(out, "the folder holds other files or results of other inputs; "
                                   "choose another --out or pass --force")
    try:
        (out / subfolder).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(out, f"cannot create the output folder ({error.strerror})") from None
    atomic_write_text(out / MANIFEST, json.dumps({"inputs_fingerprint": fingerprint, "status": "running",
                                                  "command": command}, indent=2) + "\n")
    for leftover in (*out.glob(".*.tmp"), *out.glob("*/.*.tmp")):
        leftover.unlink()
    return out
