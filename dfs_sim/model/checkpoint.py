"""Checkpoints: model, optimizer and data-stream state, with the config, seed and versions that made them."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from dfs_sim._atomic import atomic_path
from dfs_sim.errors import DfsSimError
from dfs_sim.provenance import command_line, git_commit, utc_now, versions

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "load_checkpoint", "load_checkpoint_hashed", "plain",
           "save_checkpoint"]

CHECKPOINT_FORMAT = "dfs_sim.model.checkpoint/1"
_REQUIRED = ("format", "model_name", "num_classes", "model", "stage", "iteration", "config", "seed")


class CheckpointError(DfsSimError):
    """A checkpoint file is missing, unreadable or not one of ours."""


def plain(value: Any) -> Any:
    """Dataclasses and tuples → dicts and lists (the TOML shape ``config_from_dict`` reads back)."""
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def save_checkpoint(path: str | Path, **content: Any) -> Path:
    """Write a checkpoint atomically; provenance (versions, git commit, command, time) is added here."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"format": CHECKPOINT_FORMAT, **content, "versions": versions(), "git_commit": git_commit(),
              "command": command_line(), "created": utc_now()}
    with atomic_path(path) as temporary:
        torch.save(record, temporary)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    return _load(path, map_location)[0]


def load_checkpoint_hashed(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[dict, str]:
    """``(record, SHA-256 hex digest of the file)``, the file read once."""
    record, raw = _load(path, map_location)
    return record, hashlib.sha256(raw).hexdigest()


def _load(path: str | Path, map_location: str | torch.device) -> tuple[dict, bytes]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "checkpoint file does not exist")
    try:
        raw = path.read_bytes()
        record = torch.load(io.BytesIO(raw), map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch.load raises many unrelated types for a corrupt or foreign file
        raise CheckpointError(path, f"not a readable checkpoint ({type(error).__name__}: {str(error)[:200]})") from None
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(path, f"not a dfs-sim checkpoint (format {CHECKPOINT_FORMAT!r} expected)")
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise CheckpointError(path, f"checkpoint lacks keys {missing}")
    return record, raw
