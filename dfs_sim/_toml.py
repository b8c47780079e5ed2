"""Reading TOML configuration files (presets, sweep specs, training configs) with one-line errors."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from dfs_sim.errors import ConfigError

__all__ = ["read_toml"]


def read_toml(path: str | os.PathLike) -> dict:
    """The parsed document; a missing, unreadable or malformed file raises ``ConfigError`` naming it."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(path, f"cannot read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        first_line = str(error).splitlines()[0] if str(error) else "parse error"
        raise ConfigError(path, f"not valid TOML: {first_line}") from None
