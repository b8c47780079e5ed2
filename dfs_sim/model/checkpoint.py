"""Checkpoints: model, optimizer and data-stream state, with the config, seed and versions that made them.

Reading one checks its structure (format tag, a registered model name, a state dict of tensors, a known stage, ...), so
code that uses a record can index it freely; anything else is a ``CheckpointError`` naming the file, in one line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
from pathlib import Path
from typing import Any

import torch

from dfs_sim._atomic import atomic_path
from dfs_sim.errors import DfsSimError, OutputError
from dfs_sim.provenance import command_line, git_commit, utc_now, versions

__all__ = [
    "check_writable_folder",
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "load_backbone_into",
    "load_checkpoint",
    "load_checkpoint_hashed",
    "load_weights_into",
    "plain",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "dfs_sim.model.checkpoint/1"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
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


def check_writable_folder(folder: str | Path, option: str) -> None:
    """``folder`` is, or can be created as, a folder this process may write in; checked without writing anything
    (``OutputError`` naming ``option`` otherwise), so a bad output path fails before any work is done."""
    path = Path(folder)
    existing = next(parent for parent in (path, *path.parents) if parent.exists() or parent == parent.parent)
    if not existing.is_dir():
        raise OutputError(option, f"{existing} is not a folder (the output folder {path} would be inside it)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(option, f"{existing} is not writable (the output folder is {path})")


def save_checkpoint(path: str | Path, **content: Any) -> Path:
    """Write a checkpoint atomically; provenance (versions, git commit, command, time) is added here."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(path.parent, f"cannot create the checkpoint folder ({error.strerror})") from None
    record = {
        "format": CHECKPOINT_FORMAT,
        **content,
        "versions": versions(),
        "git_commit": git_commit(),
        "command": command_line(),
        "created": utc_now(),
    }
    try:
        with atomic_path(path) as temporary:
            torch.save(record, temporary)
    except OSError as error:
        raise OutputError(path, f"cannot write the checkpoint ({error.strerror or error})") from None
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
    raw = b""
    try:
        raw = path.read_bytes()
        record = torch.load(io.BytesIO(raw), map_location=map_location, weights_only=True)
    except Exception as error:  # torch.load raises many unrelated types for a corrupt or foreign file
        kind = "a truncated or damaged checkpoint" if raw[:4] == b"PK\x03\x04" else "not a checkpoint"
        raise CheckpointError(
            path, f"{kind}: expected a file written by python -m dfs_sim.train ({type(error).__name__})"
        ) from None
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        what = (
            "a bare state dict"
            if isinstance(record, dict) and record and all(isinstance(value, torch.Tensor) for value in record.values())
            else f"a {type(record).__name__}"
        )
        raise CheckpointError(
            path,
            f"holds {what}, not a dfs-sim checkpoint (format {CHECKPOINT_FORMAT!r}, written by "
            "python -m dfs_sim.train)",
        )
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise CheckpointError(path, f"checkpoint lacks keys {missing}")
    _check_record(path, record)
    return record, raw


def _one_line(error: BaseException, limit: int = 160) -> str:
    """The telling line of an exception's message (torch's unpickler explains itself over many), without escapes."""
    lines = [" ".join(_ANSI.sub("", line).split()) for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    telling = [line for line in lines if line.startswith("WeightsUnpickler error:")]
    line = (telling or lines or [""])[0].removeprefix("WeightsUnpickler error: ")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_record(path: Path, record: dict) -> None:
    from dfs_sim.model.config import STAGES
    from dfs_sim.model.registry import list_models

    name = record["model_name"]
    if not isinstance(name, str) or name not in list_models():
        raise CheckpointError(path, f"model_name: unknown model {name!r}")
    if not _is_int(record["num_classes"]) or record["num_classes"] < 1:
        raise CheckpointError(path, f"num_classes: expected an integer >= 1, got {record['num_classes']!r}")
    state = record["model"]
    if not isinstance(state, dict) or not state:
        raise CheckpointError(path, "model: expected the model's state dict")
    bad = [key for key, value in state.items() if not isinstance(key, str) or not isinstance(value, torch.Tensor)]
    if bad:
        raise CheckpointError(path, f"model: state entries that are not named tensors: {[str(k) for k in bad[:3]]!r}")
    if record["stage"] not in STAGES:
        raise CheckpointError(path, f"stage: expected one of {list(STAGES)}, got {record['stage']!r}")
    for key in ("iteration", "seed"):
        if not _is_int(record[key]) or record[key] < 0:
            raise CheckpointError(path, f"{key}: expected an integer >= 0, got {record[key]!r}")
    if not isinstance(record["config"], dict):
        raise CheckpointError(
            path, f"config: expected a table of training settings, got {type(record['config']).__name__}"
        )


def load_backbone_into(model, record: dict, source: object, model_name: str | None = None) -> None:
    """Load the backbone of checkpoint ``record`` into ``model`` (a ``GatedResNet``; its gates are kept).

    A backbone of another depth or class count, or one whose weights do not fit, is a one-line ``CheckpointError``
    naming ``source`` (and ``model_name``, the model's registered name, when given); nothing is loaded then."""
    from dfs_sim.model.registry import parse_model_name

    target = model_name or f"a ResNet-{model.depth}"
    depth = parse_model_name(record["model_name"])[1]
    if depth != model.depth:
        raise CheckpointError(
            source,
            f"backbone is a ResNet-{depth} ({record['model_name']}, depth {depth}), the "
            f"model is {target} (depth {model.depth}); give a depth-{model.depth} checkpoint",
        )
    if record["num_classes"] != model.num_classes:
        raise CheckpointError(
            source,
            f"backbone has {record['num_classes']} classes, the model {model.num_classes} "
            f"({target}); give a checkpoint trained on the same data set",
        )
    missing, unexpected = model.load_backbone(record["model"])
    if missing or unexpected:
        raise CheckpointError(source, f"backbone weights do not fit {target}: {_misfit(missing, unexpected)}")


def load_weights_into(model, record: dict, source: object, model_name: str | None = None) -> None:
    """Load all of checkpoint ``record``'s weights into ``model``; missing, unexpected or mis-shaped keys are a
    one-line ``CheckpointError`` naming ``source`` (nothing is loaded then)."""
    from dfs_sim.model.quantize import fill_quantizer_defaults

    own = model.state_dict()
    state = fill_quantizer_defaults(record["model"], own)
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    unexpected += [
        f"{key} (shape {list(value.shape)}, model {list(own[key].shape)})"
        for key, value in state.items()
        if key in own and value.shape != own[key].shape
    ]
    target = model_name or f"a ResNet-{model.depth}"
    if missing or unexpected:
        raise CheckpointError(source, f"weights do not fit {target}: {_misfit(missing, unexpected)}")
    try:
        model.load_state_dict(state)
    except RuntimeError as error:  # same keys and shapes; a dtype that cannot be copied is all that is left
        first = str(error).strip().splitlines()[-1][:200] if str(error).strip() else type(error).__name__
        raise CheckpointError(source, f"weights do not fit {target}: {first}") from None


def _misfit(missing: list[str], unexpected: list[str]) -> str:
    parts = [f"{len(missing)} missing keys (first {missing[:2]})"] if missing else []
    parts += [f"{len(unexpected)} unexpected or mis-shaped keys (first {unexpected[:2]})"] if unexpected else []
    return "; ".join(parts)
