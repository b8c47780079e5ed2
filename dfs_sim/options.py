"""The per-block choices a gate can make, and the paper's cost proxy for them.

DFS (Shen et al., AAAI 2020) gives every gated block seven options in this code order: skip, weights *and*
activations quantized to 8, 10, 12, 14, 16 bits, and full precision. SkipNet is the binary case (skip, full
precision): ``dfs_binary`` (the DFS gate and training with SkipNet's two options) and ``skipnet`` (SkipNet as its
authors train it) use it. Static baselines use the DFS list with every block at one code.

Dynamic width: any option but skip may run a unit at a ``width`` fraction of its internal channels (channel gating,
slimmable networks), named with ``@``: ``fp@0.5``, ``q8@0.25``, ``w4a8@0.75``. The cost models price it on the unit's
narrowed layers (``dfs_sim.layer_table.narrowed``); with skip (which also expresses early exits: every later unit
skipped) and precision, it covers the three families of dynamic inference.

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
    "full_precision_code",
    "width_name",
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
    """One choice for a block: ``w_bits``/``a_bits`` are 0 for skip and 32 with ``float=True`` for full precision;
    ``width`` is the fraction of the unit's internal channels it computes (1: all)."""

    code: int
    name: str
    w_bits: int
    a_bits: int
    float: bool = False
    width: builtins.float = 1.0

    @property
    def is_skip(self) -> bool:
        return self.w_bits == 0 and self.a_bits == 0

    @property
    def narrowed(self) -> bool:
        return self.width != 1.0

    @property
    def proxy_cost(self) -> builtins.float:  # builtins.: the field ``float`` above shadows the type in this class
        """The DFS paper's cost proxy, (bits/32)²; 0 for skip, 1 for full precision (docs/design.md §1); times the
        width, the MAC fraction of a unit of two layers at that width (a BasicBlock) [our assumption for others]."""
        if self.is_skip:
            return 0.0
        return (self.w_bits / FULL_PRECISION_BITS) * (self.a_bits / FULL_PRECISION_BITS) * self.width


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
_WIDTH = re.compile(r"(?P<base>[^@]+)@(?P<width>0?\.\d+|1(?:\.0*)?)")


def _split_width(name: str) -> tuple[str, float]:
    """``("q8", 0.5)`` from ``"q8@0.5"``; ``(name, 1.0)`` without ``@``. Raises ``ValueError`` for a bad width."""
    if "@" not in name:
        return name, 1.0
    match = _WIDTH.fullmatch(name)
    if match is None or not 0 < float(match["width"]) <= 1:
        raise ValueError(f"option {name!r}: the width after '@' must be a fraction in (0, 1], e.g. fp@0.5 or q8@0.25")
    if match["base"] == "skip":
        raise ValueError(f"option {name!r}: skip has no width")
    return match["base"], float(match["width"])


def width_name(name: str, width: float) -> str:
    """An option's name at ``width`` (``q8`` at 0.5 is ``q8@0.5``; at full width, the name itself)."""
    return name if width == 1.0 else f"{name}@{width:g}"


def parse_options(names: Sequence[str]) -> tuple[Option, ...]:
    """An option list from names, codes in the given order: ``skip``, ``fp``, ``qN`` (weights and activations at N
    bits, the paper's names) and ``wNaM`` (N-bit weights, M-bit activations), e.g. Bit Fusion's native widths
    ``["skip", "w2a2", "w4a4", "w4a8", "w8a4", "w8a8", "fp"]``, each but skip optionally at a width (``fp@0.5``).
    Exactly one full-width ``fp``, at most one ``skip``, no repeats, at most ``MAX_OPTIONS``; bits in
    1..``MAX_QUANTIZED_BITS``. Raises ``ValueError`` naming the bad name."""
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise ValueError(f"expected a non-empty list of option names, got {names!r}")
    if len(names) > MAX_OPTIONS:
        raise ValueError(f"at most {MAX_OPTIONS} options, got {len(names)}")
    options = []
    for code, name in enumerate(names):
        if not isinstance(name, str):
            raise ValueError(f"option names are strings, got {name!r}")
        base, width = _split_width(name)
        if base == "skip":
            options.append(Option(code, name, 0, 0))
            continue
        if base == "fp":
            options.append(Option(code, name, FULL_PRECISION_BITS, FULL_PRECISION_BITS, float=True, width=width))
            continue
        match = _NAME.fullmatch(base)
        if match is None:
            hint = did_you_mean(name, ["skip", "fp", *(f"q{bits}" for bits in range(1, MAX_QUANTIZED_BITS + 1))])
            raise ValueError(f"unknown option {name!r}{hint}; use skip, fp, qN or wNaM (e.g. q8, w4a8, q8@0.5)")
        w_bits, a_bits = (int(match[1]), int(match[1])) if match[1] else (int(match[2]), int(match[3]))
        if not (1 <= w_bits <= MAX_QUANTIZED_BITS and 1 <= a_bits <= MAX_QUANTIZED_BITS):
            raise ValueError(f"option {name!r}: bits must be in 1..{MAX_QUANTIZED_BITS}")
        options.append(Option(code, name, w_bits, a_bits, width=width))
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"option {repeated[0]!r} is listed twice")
    pairs = [(o.w_bits, o.a_bits, o.float, o.width) for o in options if not o.is_skip]
    if len(pairs) != len(set(pairs)):
        raise ValueError("two options have the same widths (q8 and w8a8 are the same option; so are fp@1 and fp)")
    if sum(option.float and not option.narrowed for option in options) != 1:
        raise ValueError("the list needs exactly one full-precision option at full width, fp")
    return tuple(options)


def canonical_name(name: str) -> str:
    """The one spelling of an option name: ``w8a8`` is ``q8`` (the same widths); others unchanged. Raises
    ``ValueError`` for a name the grammar does not know."""
    if not isinstance(name, str):
        raise ValueError(f"option names are strings, got {name!r}")
    base, width = _split_width(name)
    match = _NAME.fullmatch(base)
    if match is None:
        if base not in ("skip", "fp"):
            parse_options([base, "fp"])  # raises the grammar's own error
        return width_name(base, width)
    if match[2] and match[2] == match[3]:
        return width_name(f"q{match[2]}", width)
    return width_name(base, width)


def options_to_meta(options: tuple[Option, ...]) -> list[dict]:
    """The ``options`` list of trace metadata; ``width`` is written only where it is below 1, so traces without
    dynamic width keep the entries (and content hashes) of format 3."""
    entries = [asdict(option) for option in options]
    for entry in entries:
        if entry["width"] == 1.0:
            del entry["width"]
    return entries


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
                width=_as_width(entry.get("width", 1.0)),
            )
        except KeyError as missing:
            raise ValueError(f"options[{position}] lacks key {missing}") from None
        except ValueError as error:
            raise ValueError(f"options[{position}]: {error}") from None
        if option.is_skip and option.narrowed:
            raise ValueError(f"options[{position}] skips the unit, so it has no width")
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


def _as_width(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ValueError(f"width must be a fraction in (0, 1], got {value!r}")
    return float(value)


def _as_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def proxy_costs(options: tuple[Option, ...]) -> list[float]:
    return [option.proxy_cost for option in options]


def full_precision_code(options: Sequence[Option]) -> int:
    """The code of the full-precision, full-width option (what always-run layers use); ``ValueError`` unless there is
    exactly one."""
    codes = [option.code for option in options if option.float and not option.narrowed]
    if len(codes) != 1:
        raise ValueError("the option list must contain exactly one full-precision option at full width (fp)")
    return codes[0]


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
