"""Device names of the commands (``--device``, the ``device`` config key), checked before anything is loaded or written.

``auto`` is the GPU when torch sees one, else the CPU; ``cpu``; ``cuda`` (the current GPU) and ``cuda:N``. Asking for a
GPU that this machine or this torch build cannot give is a ``ConfigError`` naming the option, not a traceback from the
first tensor moved there.
"""

from __future__ import annotations

import re

import torch

from dfs_sim.errors import ConfigError

__all__ = ["DEVICE_NAMES", "check_device_name", "resolve_device"]

DEVICE_NAMES = "auto, cpu, cuda or cuda:N"
_CUDA = re.compile(r"cuda(?::(\d{1,6}))?")


def check_device_name(name: object, source: object = "--device") -> int | None:
    """The spelling alone (no hardware looked at): ``None`` for auto/cpu/cuda, the index of ``cuda:N``."""
    if not isinstance(name, str):
        raise ConfigError(source, f"expected a device name ({DEVICE_NAMES}), got {name!r}")
    if name in ("auto", "cpu", "cuda"):
        return None
    match = _CUDA.fullmatch(name)
    if match is None:
        raise ConfigError(source, f"unknown device {name!r}; valid: {DEVICE_NAMES}")
    return int(match.group(1))


def resolve_device(name: str, source: object = "--device") -> torch.device:
    """The ``torch.device`` for ``name``; ``ConfigError`` naming ``source`` for an unknown name, a CUDA device when this
    torch has no CUDA or no GPU is visible, or a GPU index beyond the visible ones."""
    index = check_device_name(name, source)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.backends.cuda.is_built():
        raise ConfigError(
            source, f"{name!r} needs CUDA, but this torch build has none (torch {torch.__version__}); use cpu or auto"
        )
    if not torch.cuda.is_available():
        raise ConfigError(source, f"{name!r} needs a CUDA GPU, but none is visible on this machine; use cpu or auto")
    count = torch.cuda.device_count()
    if index is not None and index >= count:
        visible = "cuda:0" if count == 1 else f"cuda:0..cuda:{count - 1}"
        plural = "s" if count != 1 else ""
        raise ConfigError(source, f"{name!r} does not exist: {count} GPU{plural} visible ({visible})")
    return torch.device(name)
