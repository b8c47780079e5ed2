"""Typed errors for bad user input.

Library code raises these; only the command-line layer turns them into one line on stderr and exit code 2.
Every message names the file (or object) and the problem, so a user can fix it without a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "DfsSimError",
    "TraceFormatError",
    "LayerTableError",
    "ConfigError",
    "OutputError",
    "EXIT_BAD_INPUT",
    "did_you_mean",
    "report_bad_input",
]

EXIT_BAD_INPUT = 2


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to ``word``, or "" when none is close."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class DfsSimError(Exception):
    """Base class for every error caused by bad input rather than by a bug."""

    def __init__(self, source: object, problem: str) -> None:
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


class TraceFormatError(DfsSimError):
    """A trace file is unreadable, truncated or violates the trace format (docs/design.md §2)."""


class LayerTableError(DfsSimError):
    """A layer table has impossible shapes or does not match what it is used with."""


class ConfigError(DfsSimError):
    """A TOML configuration (preset, sweep, training) is malformed or out of range."""


class OutputError(DfsSimError):
    """An output location cannot be written safely."""


def report_bad_input(error: Exception, where: object = None) -> int:
    """What a command does with bad input: one line on stderr, ``error: ...``, and the exit code to return. An
    ``OSError`` (a scheduler address nobody answers at, a full disk) is named by ``where`` and its first line."""
    import sys

    if isinstance(error, DfsSimError):
        print(f"error: {error}", file=sys.stderr)
    else:
        lines = str(error).splitlines() or [type(error).__name__]
        print(f"error: {where}: {lines[0]}", file=sys.stderr)
    return EXIT_BAD_INPUT
