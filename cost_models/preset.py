"""Hardware presets: TOML data files loaded into frozen dataclasses and validated on load.

A preset file has a ``schema_version``, a ``name``, a ``kind`` (one of the registered accelerator kinds), a
``description`` and the sections ``[clock]``, ``[array]`` (kind-specific), ``[buffers]``, ``[dram]``, ``[energy]`` and
``[policy]``. Every constant carries its source in a comment of the file; Python code holds no hardware numbers.
An unknown key, a missing key, a wrong type, a zero or negative size or an unknown kind or policy raises
``ConfigError`` with one line naming the file and the key (docs/design.md §5).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Set
from dataclasses import MISSING, asdict, dataclass, fields, replace as _replace
from pathlib import Path
from typing import Any

from dfs_sim._toml import read_toml
from dfs_sim.errors import ConfigError, did_you_mean

__all__ = [
    "Preset",
    "BitFusionArray",
    "SerialArray",
    "ParallelArray",
    "Buffers",
    "Dram",
    "Energy",
    "Policy",
    "ARRAY_SPECS",
    "PRESET_DIR",
    "SCHEMA_VERSION",
    "list_presets",
    "load_preset",
]

SCHEMA_VERSION = 1
PRESET_DIR = Path(__file__).resolve().parent / "presets"
# Presets loadable by name that replays and sweeps leave out by default: a model of someone else's simulator (e.g.
# ``bitfusion_sim``, the public Bit Fusion simulator itself) is there to check against, not to report on.
REFERENCE_DIR = PRESET_DIR / "reference"


@dataclass(frozen=True)
class BitFusionArray:
    """Bit Fusion array: ``rows`` × ``cols`` Fusion Units of BitBricks ``pmin`` bits wide, fusing up to ``pmax``."""

    rows: int
    cols: int
    pmax: int
    pmin: int
    im2col_max_in_ch: int


@dataclass(frozen=True)
class SerialArray:
    """Bit-serial tile geometry (DaDianNao-style): ``tiles`` × (``filters`` × ``windows`` SIPs) × ``lanes``.

    ``variant`` is ``"stripes"`` (activations serial, weights ``pe_width`` bits parallel) or ``"loom"`` (both serial,
    ``act_bits_per_cycle`` activation bits and one weight bit per cycle). ``dynamic_precision`` (optional, default
    false): the serial activation bits are the ones each input's data needs (``cost_models.pricing.effective_cost``).

    Optional keys for DNNsim's schedules (isakedo/DNNsim @4748a60; their defaults are the behaviour of the presets
    that do not name them, and they are left out of ``Preset.content_hash`` when at their defaults):

    * ``fc_dataflow``: ``"twin"`` (default): fully connected layers run on the equal-peak bit-parallel twin
      (``cost_models.bitserial``); ``"columns"``: DNNsim's ``process_linear``: each step (one chunk of ``lanes``
      inputs × the tiles' filters) holds one of ``windows`` rotating columns, and a step starts every cycle on the
      next column once it is free (``cost_models.bitserial.column_pipeline_cycles``).
    * ``trim_group``: what one trimmed width covers under ``dynamic_precision``: ``"position"`` (default): ``lanes``
      channels at one output position, averaged per input by the export (``dfs_sim.model.precision``); ``"step"``:
      DNNsim's ShapeShifter and Loom, the widest activation of a whole step (``windows`` windows × ``lanes``
      channels), priced from per-step widths by ``cost_models.bitserial.stepwise_cost``.
    * ``dynamic_weights`` (Loom only): weights are trimmed per step too, to the widest weight of the step's
      ``filters·tiles`` filters × ``lanes`` channels (DNNsim Loom ``dynamic_weights``).
    """

    variant: str
    tiles: int
    filters: int
    windows: int
    lanes: int
    pe_width: int
    act_bits_per_cycle: int
    im2col_max_in_ch: int
    # charge each input the activation precision its data needs (Dynamic Stripes / Loom runtime trimming, from the
    # trace's effective precisions); false: the option's static precision
    dynamic_precision: bool = False
    fc_dataflow: str = "twin"
    trim_group: str = "position"
    dynamic_weights: bool = False

    def step_geometry(self) -> dict[str, int]:
        """What one step holds, as a per-step precision measurement records it (trace metadata
        ``effective_precision``): ``windows`` × ``lanes`` of one kernel tap, for ``filters_per_set`` filters
        (``filters·tiles``), streaming ``bits_per_cycle`` activation bits a cycle (DNNsim's window dataflow)."""
        return {
            "windows": self.windows,
            "lanes": self.lanes,
            "filters_per_set": self.filters * self.tiles,
            "bits_per_cycle": self.act_bits_per_cycle,
        }


@dataclass(frozen=True)
class ParallelArray:
    """Fixed bit-parallel array: ``tiles`` × ``filters`` × ``lanes`` × ``windows`` multipliers, each ``pe_width`` bits
    wide."""

    tiles: int
    filters: int
    windows: int
    lanes: int
    pe_width: int
    im2col_max_in_ch: int


@dataclass(frozen=True)
class Buffers:
    """On-chip buffers in KiB; a tile must fit ``fit_fraction`` of each (double buffering)."""

    ibuf_kib: float
    wbuf_kib: float
    obuf_kib: float
    fit_fraction: float
    pad_outputs_to_cols: bool


@dataclass(frozen=True)
class Dram:
    bits_per_cycle: int
    pj_per_bit: float


@dataclass(frozen=True)
class Energy:
    """Per-action energies (Accelergy style): one busy compute-unit cycle, one idle compute-unit cycle (a unit of
    the array that has no operand in that cycle while the array computes), and one bit read or written per buffer.
    Setting ``idle_unit_cycle_pj = unit_cycle_pj`` charges every unit every compute cycle, as the public Bit Fusion
    simulator charges its whole core [repo, docs/hardware.md §1.3].

    The SRAM prices hold for buffers of the ``*_anchor_kib`` sizes. With ``sram_scaling = "sqrt"`` a buffer of
    another size (a sweep over ``buffers.wbuf_kib``, say) pays ``price × sqrt(size / anchor)`` per bit: an access to a
    larger array drives longer word and bit lines, and Horowitz (ISSCC 2014, 45 nm) gives 10 pJ for a 64-bit access to
    an 8 KB SRAM and 20 pJ for 32 KB, twice the energy for four times the capacity, with the same number of banks.
    ``"fixed"`` (the default when the keys are absent) prices every size alike."""

    unit_cycle_pj: float
    idle_unit_cycle_pj: float
    ibuf_read_pj_per_bit: float
    ibuf_write_pj_per_bit: float
    wbuf_read_pj_per_bit: float
    wbuf_write_pj_per_bit: float
    obuf_read_pj_per_bit: float
    obuf_write_pj_per_bit: float
    sram_scaling: str = "fixed"
    ibuf_anchor_kib: float = 0.0  # 0: none given (needed with "sqrt")
    wbuf_anchor_kib: float = 0.0
    obuf_anchor_kib: float = 0.0


@dataclass(frozen=True)
class Policy:
    """What a choice moves (docs/design.md §3): output width, what skip copies, how full precision is executed; and what
    the tiling search minimises (``search_objective``: ``"cycles"`` = the public simulator's fewest cycles, then
    least energy; ``"energy"`` = least energy, then fewest cycles; ``"edp"`` = least energy × cycles)."""

    output_bits: str
    fill_drain: str
    search_objective: str
    acc_bits: int
    skip: str
    skip_copy_bits: int
    fp_bits: str
    fp_macs_per_cycle: float
    fp_mac_pj: float
    # bit-parallel arrays only: operands narrower than this are still stored and moved at this width (a fixed 16-bit
    # design's memory holds 16-bit words); 1, the default, moves each option's own bits
    min_storage_bits: int = 1


ARRAY_SPECS: dict[str, type] = {"bitfusion": BitFusionArray, "bitserial": SerialArray, "bitparallel": ParallelArray}
_CHOICES = {
    ("policy", "output_bits"): ("act", "acc"),
    ("policy", "fill_drain"): ("tile", "promoted"),
    ("policy", "search_objective"): ("cycles", "energy", "edp"),
    ("policy", "skip"): ("alias", "copy"),
    ("policy", "fp_bits"): ("int32", "fp_unit"),
    ("array", "variant"): ("stripes", "loom"),
    ("array", "fc_dataflow"): ("twin", "columns"),
    ("array", "trim_group"): ("position", "step"),
    ("energy", "sram_scaling"): ("fixed", "sqrt"),
}
# Keys that may be zero (sizes, widths and rates must be > 0; energies may be 0, e.g. in a hand-checkable toy).
_MAY_BE_ZERO = {("array", "im2col_max_in_ch"), ("dram", "pj_per_bit"), ("policy", "fp_mac_pj")} | {
    ("energy", f.name) for f in fields(Energy)
}
# optional keys dropped from ``Preset.to_dict`` (and so from ``content_hash``) while at their defaults
_HASH_OMITS_DEFAULTS = (("array", "fc_dataflow"), ("array", "trim_group"), ("array", "dynamic_weights"))
_TOP_KEYS = ("schema_version", "name", "kind", "description")
_SECTIONS = {"clock": None, "array": None, "buffers": Buffers, "dram": Dram, "energy": Energy, "policy": Policy}


@dataclass(frozen=True)
class Preset:
    """One accelerator configuration. ``array`` is the kind's geometry dataclass (see ``ARRAY_SPECS``)."""

    name: str
    kind: str
    description: str
    freq_mhz: float
    array: Any
    buffers: Buffers
    dram: Dram
    energy: Energy
    policy: Policy
    schema_version: int = SCHEMA_VERSION
    source: str = ""

    @property
    def clock_hz(self) -> float:
        return self.freq_mhz * 1e6

    @property
    def dynamic_precision(self) -> bool:
        """Whether the array streams only the activation bits each input needs (``array.dynamic_precision``)."""
        return bool(getattr(self.array, "dynamic_precision", False))

    def cycles_to_us(self, cycles):
        """Cycles at this preset's clock in microseconds (works on scalars and numpy arrays)."""
        return cycles / self.freq_mhz

    def to_dict(self) -> dict:
        """Every value but the source path; optional keys added after a preset's hash was first published are left
        out while at their defaults (``_HASH_OMITS_DEFAULTS``), so adding them changed no existing preset's hash."""
        data = asdict(self)
        data.pop("source")
        for section, key in _HASH_OMITS_DEFAULTS:
            values = data.get(section)
            if isinstance(values, dict) and key in values:
                cls = type(getattr(self, section))
                default = next(f.default for f in fields(cls) if f.name == key)
                if values[key] == default:
                    del values[key]
        return data

    def content_hash(self) -> str:
        """A stable hash of every value (not of the file path): equal presets hash equal."""
        payload = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def sram_pj_per_bit(self, buffer: str, way: str) -> float:
        """The price of one bit read or written (``way``) in ``buffer`` ("ibuf", "wbuf", "obuf") at its size here
        (``Energy``: the price as given, or scaled from its anchor size by the square root)."""
        price = getattr(self.energy, f"{buffer}_{way}_pj_per_bit")
        if self.energy.sram_scaling == "fixed":
            return price
        size, anchor = getattr(self.buffers, f"{buffer}_kib"), getattr(self.energy, f"{buffer}_anchor_kib")
        return price if size == anchor else price * math.sqrt(size / anchor)

    def replace(self, **changes: Any) -> Preset:
        """A copy with top-level fields or ``section__key`` values changed, e.g. ``policy__output_bits="acc"``."""
        top = {key: value for key, value in changes.items() if "__" not in key}
        nested: dict[str, dict[str, Any]] = {}
        for key, value in changes.items():
            if "__" in key:
                section, name = key.split("__", 1)
                nested.setdefault(section, {})[name] = value
        for section, values in nested.items():
            top[section] = _replace(getattr(self, section), **values)
        return _replace(self, **top)


def list_presets(reference: bool = False) -> list[str]:
    """Names of the shipped presets (files in ``cost_models/presets``), sorted; with ``reference``, also the
    reference presets (``cost_models/presets/reference``), which load by name but are not replayed by default."""
    names = [path.stem for path in PRESET_DIR.glob("*.toml")]
    if reference:
        names += [path.stem for path in REFERENCE_DIR.glob("*.toml")]
    return sorted(names)


def load_preset(name_or_path: str | Path | Preset) -> Preset:
    """Load a shipped preset by name, or a user's TOML file by path; raises ``ConfigError`` on any problem."""
    if isinstance(name_or_path, Preset):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith(".toml") or path.is_file()):
        path = PRESET_DIR / f"{text}.toml"
        if not path.is_file():
            path = REFERENCE_DIR / f"{text}.toml"
        if not path.is_file():
            names = list_presets(reference=True)
            hint = did_you_mean(text, names)
            raise ConfigError(text, f"unknown preset{hint}; valid: {', '.join(names)} (or a path to a .toml file)")
    return _load_cached(str(path.resolve()), path.stat().st_mtime_ns if path.exists() else 0)


_CACHE: dict[tuple[str, int], Preset] = {}


def _load_cached(path: str, mtime: int) -> Preset:
    key = (path, mtime)
    if key not in _CACHE:
        _CACHE[key] = _parse_file(Path(path))
    return _CACHE[key]


def _parse_file(path: Path) -> Preset:
    return preset_from_dict(read_toml(path), source=path)


def preset_from_dict(data: dict, source: object = "preset") -> Preset:
    """Validate a parsed TOML document and build the ``Preset``."""
    unknown = sorted(set(data) - set(_TOP_KEYS) - set(_SECTIONS))
    if unknown:
        valid = _TOP_KEYS + tuple(_SECTIONS)
        hint = did_you_mean(unknown[0], valid)
        raise ConfigError(source, f"unknown key {unknown[0]!r}{hint}; valid top-level keys: {', '.join(valid)}")
    for key in _TOP_KEYS + tuple(_SECTIONS):
        if key not in data:
            raise ConfigError(source, f"missing key {key!r}")
    version = data["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version != SCHEMA_VERSION:
        raise ConfigError(source, f"key 'schema_version': expected {SCHEMA_VERSION}, got {version!r}")
    for key in ("name", "kind", "description"):
        if not isinstance(data[key], str) or not data[key]:
            raise ConfigError(source, f"key {key!r}: expected a non-empty string, got {data[key]!r}")
    kind = data["kind"]
    if kind not in ARRAY_SPECS:
        raise ConfigError(source, f"key 'kind': unknown kind {kind!r}; valid: {', '.join(sorted(ARRAY_SPECS))}")
    clock = _section(data, "clock", source)
    _check_keys(clock, ("freq_mhz",), "clock", source)
    freq = _number(clock["freq_mhz"], "clock", "freq_mhz", float, source)
    sections = {}
    for section, section_cls in _SECTIONS.items():
        cls = ARRAY_SPECS[kind] if section == "array" else section_cls
        if cls is None:  # the clock, read above
            continue
        sections[section] = _build(cls, _section(data, section, source), section, source)
    preset = Preset(
        name=data["name"],
        kind=kind,
        description=data["description"],
        freq_mhz=freq,
        schema_version=version,
        source=str(source),
        **sections,
    )
    _check_consistency(preset, source)
    return preset


def _section(data: dict, section: str, source: object) -> dict:
    value = data[section]
    if not isinstance(value, dict):
        raise ConfigError(source, f"key {section!r}: expected a table [{section}]")
    return value


def _check_keys(
    values: dict, expected: tuple[str, ...], section: str, source: object, optional: Set[str] = frozenset()
) -> None:
    unknown = sorted(set(values) - set(expected))
    if unknown:
        hint = did_you_mean(unknown[0], expected)
        raise ConfigError(source, f"unknown key '{section}.{unknown[0]}'{hint}; valid: {', '.join(expected)}")
    for key in expected:
        if key not in values and key not in optional:
            raise ConfigError(source, f"missing key '{section}.{key}'")


def _build(cls: type, values: dict, section: str, source: object):
    """``cls`` from one TOML table: every field without a default must be there, no key may be unknown."""
    optional = {field.name for field in fields(cls) if field.default is not MISSING}
    names = tuple(field.name for field in fields(cls))
    _check_keys(values, names, section, source, optional)
    kwargs: dict[str, object] = {}
    for field in fields(cls):
        if field.name not in values:
            continue
        value = values[field.name]
        kind = field.type if isinstance(field.type, str) else field.type.__name__
        if kind == "str":
            choices = _CHOICES.get((section, field.name))
            if not isinstance(value, str) or (choices and value not in choices):
                raise ConfigError(source, f"key '{section}.{field.name}': expected one of {choices}, got {value!r}")
            kwargs[field.name] = value
        elif kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(source, f"key '{section}.{field.name}': expected true or false, got {value!r}")
            kwargs[field.name] = value
        else:
            kwargs[field.name] = _number(value, section, field.name, int if kind == "int" else float, source)
    return cls(**kwargs)


def _number(value: object, section: str, key: str, kind: type, source: object):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise ConfigError(
            source, f"key '{section}.{key}': expected {'an integer' if kind is int else 'a number'}, got {value!r}"
        )
    if value < 0 or (value == 0 and (section, key) not in _MAY_BE_ZERO):
        raise ConfigError(
            source,
            f"key '{section}.{key}': must be {'>= 0' if (section, key) in _MAY_BE_ZERO else '> 0'}, got {value!r}",
        )
    return kind(value)


def _check_consistency(preset: Preset, source: object) -> None:
    if preset.energy.sram_scaling == "sqrt":
        for buffer in ("ibuf", "wbuf", "obuf"):
            if getattr(preset.energy, f"{buffer}_anchor_kib") <= 0:
                raise ConfigError(
                    source,
                    f"key 'energy.{buffer}_anchor_kib': sram_scaling = \"sqrt\" needs the size the prices hold at",
                )
    if preset.buffers.fit_fraction > 1:
        raise ConfigError(source, f"key 'buffers.fit_fraction': must be in (0, 1], got {preset.buffers.fit_fraction}")
    array = preset.array
    if isinstance(array, BitFusionArray) and array.pmin > array.pmax:
        raise ConfigError(source, f"key 'array.pmin': {array.pmin} exceeds array.pmax {array.pmax}")
    storage = preset.policy.min_storage_bits
    if storage > 1 and not (isinstance(array, ParallelArray) and storage <= array.pe_width):
        raise ConfigError(
            source, f"key 'policy.min_storage_bits': {storage} needs a bit-parallel array at least as wide (pe_width)"
        )
    if isinstance(array, SerialArray) and array.act_bits_per_cycle > array.pe_width:
        raise ConfigError(source, f"key 'array.act_bits_per_cycle': {array.act_bits_per_cycle} exceeds array.pe_width")
    if isinstance(array, SerialArray) and array.dynamic_weights and array.variant != "loom":
        raise ConfigError(source, "key 'array.dynamic_weights': needs variant = \"loom\" (bit-serial weights)")
    if isinstance(array, SerialArray) and array.dynamic_weights and not array.dynamic_precision:
        raise ConfigError(source, "key 'array.dynamic_weights': needs dynamic_precision = true")
