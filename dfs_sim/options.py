"""The per-block choices a gate can make, and the paper's cost proxy for them.

DFS (Shen et al., AAAI 2020) gives every gated block seven options in this code order: skip, weights *and*
activations quantized to 8, 10, 12, 14, 16 bits, and full precision. SkipNet is the binary case (skip, full
precision): ``dfs_binary`` (the DFS gate and training with SkipNet's two options) and ``skipnet`` (SkipNet as its
authors train it) use it. Static baselines use the DFS list with every block at one code.

Two definitions of a run's computation: the paper's proxy (``proxy_cost`` per decision, averaged; used for every
method) and SkipNet's own (``skipnet_computation_pct``), which counts executed blocks and the always-run first block.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from dfs_sim.errors import did_you_mean

__all__ = [
    "Option",
    "DFS_OPTIONS",
    "SKIPNET_OPTIONS",
    "FULL_PRECISION_BITS",
    "canonical_name",
    "options_for_method",
    "options_from_meta",
    "options_to_meta",
    "parse_options",
    "proxy_costs",
    "skip_or_run",
    "skipnet_computation_pct",
]

FULL_PRECISION_BITS = 32


@dataclass(frozen=True)
class Option:
    """One choice for a block: ``w_bits``/``a_bits`` are 0 for skip and 32 with ``float=True`` for full precision."""

    code: int
    name: str
    w_bits: int
    a_bits: int
    float: bool = False

    @property
    def is_skip(self) -> bool:
        return self.w_bits == 0 and self.a_bits == 0

    @property
    def proxy_cost(self) -> builtins.float:  # builtins.: the field ``float`` above shadows the type in this class
        """The DFS paper's cost proxy, (bits/32)²; 0 for skip, 1 for full precision (docs/design.md §1)."""
        if self.is_skip:
            return 0.0
        return (self.w_bits / FULL_PRECISION_BITS) * (self.a_bits / FULL_PRECISION_BITS)


def _quantized(code: int, bits: int) -> Option:
    return Option(code, f"q{bits}", bits, bits)


DFS_OPTIONS: tuple[Option, ...] = (
    Option(0, "skip", 0, 0),
    *(_quantized(code, bits) for code, bits in enumerate((8, 10, 12, 14, 16), start=1)),
    Option(6, "fp", FULL_PRECISION_BITS, FULL_PRECISION_BITS, float=True),
)

SKIPNET_OPTIONS: tuple[Option, ...] = (
    Option(0, "skip", 0, 0),
    Option(1, "fp", FULL_PRECISION_BITS, FULL_PRECISION_BITS, float=True),
)

_BY_METHOD = {
    "dfs": DFS_OPTIONS,
    "dfs_binary": SKIPNET_OPTIONS,
    "skipnet": SKIPNET_OPTIONS,
    "static": DFS_OPTIONS,
}


def options_for_method(method: str) -> tuple[Option, ...]:
    """The option list a method uses; unknown methods raise ``KeyError`` listing the valid ones."""
    try:
        return _BY_METHOD[method]
    except KeyError:
        raise KeyError(f"unknown method {method!r}; valid: {sorted(_BY_METHOD)}") from None


MAX_OPTIONS = 16  # a replay kernel holds an option code in 4 bits
MAX_QUANTIZED_BITS = 16  # the quantized options a model runs (full precision is its own option)
_NAME = re.compile(r"q(\d+)|w(\d+)a(\d+)")


def parse_options(names: Sequence[str]) -> tuple[Option, ...]:
    """An option list from names, codes in the given order: ``skip``, ``fp``, ``qN`` (weights and activations at N
    bits, the paper's names) and ``wNaM`` (N-bit weights, M-bit activations), e.g. Bit Fusion's native widths
    ``["skip", "w2a2", "w4a4", "w4a8", "w8a4", "w8a8", "fp"]``. Exactly one ``fp``, at most one ``skip``, no
    repeats, at most ``MAX_OPTIONS``; bits in 1..``MAX_QUANTIZED_BITS``. Raises ``ValueError`` naming the bad name."""
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise ValueError(f"expected a non-empty list of option names, got {names!r}")
    if len(names) > MAX_OPTIONS:
        raise ValueError(f"at most {MAX_OPTIONS} options, got {len(names)}")
    options = []
    for code, name in enumerate(names):
        if not isinstance(name, str):
            raise ValueError(f"option names are strings, got {name!r}")
        if name == "skip":
            options.append(Option(code, name, 0, 0))
            continue
        if name == "fp":
            options.append(Option(code, name, FULL_PRECISION_BITS, FULL_PRECISION_BITS, float=True))
            continue
        match = _NAME.fullmatch(name)
        if match is None:
            hint = did_you_mean(name, ["skip", "fp", *(f"q{bits}" for bits in range(1, MAX_QUANTIZED_BITS + 1))])
            raise ValueError(f"unknown option {name!r}{hint}; use skip, fp, qN or wNaM (e.g. q8, w4a8)")
        w_bits, a_bits = (int(match[1]), int(match[1])) if match[1] else (int(match[2]), int(match[3]))
        if not (1 <= w_bits <= MAX_QUANTIZED_BITS and 1 <= a_bits <= MAX_QUANTIZED_BITS):
            raise ValueError(f"option {name!r}: bits must be in 1..{MAX_QUANTIZED_BITS}")
        options.append(Option(code, name, w_bits, a_bits))
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"option {repeated[0]!r} is listed twice")
    pairs = [(o.w_bits, o.a_bits) for o in options if not o.float and not o.is_skip]
    if len(pairs) != len(set(pairs)):
        raise ValueError("two options have the same widths (q8 and w8a8 are the same option)")
    if names.count("fp") != 1:
        raise ValueError("the list needs exactly one full-precision option, fp")
    return tuple(options)


def canonical_name(name: str) -> str:
    """The one spelling of an option name: ``w8a8`` is ``q8`` (the same widths); others unchanged. Raises
    ``ValueError`` for a name the grammar does not know."""
    match = _NAME.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        if name in ("skip", "fp"):
            return name
        parse_options([name, "fp"] if name != "fp" else [name])  # raises the grammar's own error
        return name
    if match[2] and match[2] == match[3]:
        return f"q{match[2]}"
    return name


def options_to_meta(options: tuple[Option, ...]) -> list[dict]:
    return [asdict(option) for option in options]


def options_from_meta(entries: list[dict]) -> tuple[Option, ...]:
    """Parse the ``options`` list of trace metadata; raises ``ValueError`` naming the first bad entry."""
    if not isinstance(entries, list) or not entries:
        raise ValueError("'options' must be a non-empty list")
    options = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"options[{position}] is not an object")
        try:
            option = Option(
                code=_as_int(entry["code"]),
                name=str(entry["name"]),
                w_bits=_as_int(entry["w_bits"]),
                a_bits=_as_int(entry["a_bits"]),
                float=bool(entry.get("float", False)),
            )
        except KeyError as missing:
            raise ValueError(f"options[{position}] lacks key {missing}") from None
        if option.code != position:
            raise ValueError(f"options[{position}] has code {option.code}; codes must be 0, 1, 2, ... in order")
        if not (0 <= option.w_bits <= FULL_PRECISION_BITS and 0 <= option.a_bits <= FULL_PRECISION_BITS):
            raise ValueError(f"options[{position}] has bits outside 0..{FULL_PRECISION_BITS}")
        if (option.w_bits == 0) != (option.a_bits == 0):
            raise ValueError(
                f"options[{position}] skips only one operand (w_bits={option.w_bits}, a_bits={option.a_bits})"
            )
        options.append(option)
    return tuple(options)


def _as_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def proxy_costs(options: tuple[Option, ...]) -> list[float]:
    return [option.proxy_cost for option in options]


def skip_or_run(options: Sequence[Option]) -> bool:
    """Whether ``options`` are exactly (skip, full precision), in that order: SkipNet's choice."""
    return [(option.is_skip, option.float) for option in options] == [(True, False), (False, True)]


def skipnet_computation_pct(codes: np.ndarray, skip_code: int) -> float:
    """SkipNet's computation percentage (``ucbdrive/skipnet`` ``cifar/train_rl.py``): (executed gated blocks + 1) /
    (gated blocks + 1) × 100, averaged over the inputs of ``codes`` (inputs × gated blocks). The always-run first
    block counts as one executed block; every block weighs the same, and the stem, classifier and gates are not
    counted. A run whose every gated block runs scores 100; one that skips them all, 100 / (gated blocks + 1)."""
    codes = np.asarray(codes)
    blocks = codes.shape[1]
    executed = (codes != skip_code).sum(axis=1)
    return float(((executed + 1) / (blocks + 1)).mean() * 100.0)
