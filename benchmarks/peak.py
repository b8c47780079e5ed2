"""``python -m benchmarks.peak -- CMD...``: run CMD, then print its wall time and peak resident memory.

The last stdout line is JSON, ``{"max_rss_kib": ..., "wall_s": ...}``, and the exit code is CMD's. The peak is
``getrusage(RUSAGE_CHILDREN).ru_maxrss``: the largest resident set of any process this wrapper waited for, directly
or through its children. Measured here, not in the benchmark, because a parent's RUSAGE_CHILDREN keeps the peak of
every child it has ever run: a fresh wrapper per command reports that command alone.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def peak_rss_kib() -> int:
    """The peak resident memory of this process's finished children, in KiB (macOS reports bytes)."""
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def exit_code(returncode: int) -> int:
    """The shell's convention for a command killed by a signal (128 + signal number), CMD's own code otherwise."""
    return 128 - returncode if returncode < 0 else returncode


def main(argv: list[str] | None = None) -> int:
    """Run the command after ``--``, print the JSON line and return the command's exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python -m benchmarks.peak -- CMD [ARG ...]", file=sys.stderr)
        return 2
    start = time.perf_counter()
    returncode = subprocess.run(args).returncode
    wall_s = time.perf_counter() - start
    print(json.dumps({"max_rss_kib": peak_rss_kib(), "wall_s": wall_s}), flush=True)
    return exit_code(returncode)


if __name__ == "__main__":
    sys.exit(main())
