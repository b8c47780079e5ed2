"""Cost tables: a preset's charge per gated block and option, and once for the always-run layers (docs/design.md §3).

``CostTable.block[b, k, m]`` is gated block ``b`` at option ``k`` for metric ``METRICS[m]``, *including* the block's
projection layer (role ``projection``), which runs at its ``fixed_option`` even when the block is skipped.
An option with a ``width`` below 1 prices the block's main layers narrowed (``dfs_sim.layer_table.narrowed``).
``CostTable.fixed[m]`` sums every always-run layer (stem, first block, fc, gates) at its ``fixed_option``. A block's
cost depends only on its own option's (w_bits, a_bits, float, skip), so replay is a gather-sum. On a preset with
``array.dynamic_precision``, ``CostTable.effective[b, k, e, m]`` is block ``b`` at option ``k`` when its activations
stream on average ``e`` bits per step (``cost_models.pricing.effective_cost`` for its main layers; the projection stays
static).

Skip under ``skip = "copy"``: a skipped block without a projection copies its input once (its first main layer's
input); a block with a projection does not copy, its projection writes the block output [our assumption].

Tables are cached on disk (``.npz``, written atomically) keyed by a hash of the layer table, the preset, the
options and ``MODEL_VERSION``; a cache file that does not load, or whose key or checksum does not match, is
rebuilt, not trusted. Default folder: ``$DFS_SIM_CACHE`` or ``~/.cache/dfs_sim/cost_tables``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cost_models.preset import Preset, load_preset
from cost_models.pricing import METRICS, LayerCost, effective_cost, option_cost, skip_cost, trims
from dfs_sim._atomic import atomic_write_bytes
from dfs_sim.layer_table import ConvLayer, LayerTable, narrowed
from dfs_sim.options import DFS_OPTIONS, Option, options_to_meta
from dfs_sim.traces import PRECISION_STEPS

__all__ = ["CostTable", "build_cost_table", "default_cache_dir", "MODEL_VERSION"]

# Bump when a formula changes: old cache files then stop matching.
MODEL_VERSION = "cost-models-5"  # bumped on every formula change (the history is in git)


@dataclass(frozen=True, eq=False)
class CostTable:
    block: np.ndarray  # float64 (num_blocks, num_options, len(METRICS))
    fixed: np.ndarray  # float64 (len(METRICS),)
    preset: Preset
    options: tuple[Option, ...]
    key: str
    metrics: tuple[str, ...] = METRICS
    # dynamic-precision presets only: float64 (num_blocks, num_options, pe_width + 1, len(METRICS)), the block at each
    # option when its activations need k bits (k = 1..pe_width; k = 0, k >= the option's bits and options that do
    # not trim: static)
    effective: np.ndarray | None = None

    @property
    def num_blocks(self) -> int:
        return self.block.shape[0]

    @functools.cached_property
    def precision_deltas(self) -> np.ndarray:
        """What each effective precision changes, for replay: (blocks, options, 256, metrics), where ``[b, k, e]``
        is block ``b`` at option ``k`` with activations that need ``e / PRECISION_STEPS`` bits, minus its static cost
        (``e = 0``: not measured, no change; any uint8 ``e`` indexes it). Between whole bits the cost is interpolated
        linearly. That is exact for the compute cycles, unit-cycles and compute energy: ``effective`` holds
        ``cost_models.pricing.effective_cost`` at whole bits, which is linear in the mean streamed passes
        ``e / act_bits_per_cycle`` between multiples of ``act_bits_per_cycle`` (for 1 bit per cycle: between any two
        whole bits), and every whole bit is such a point or lies on such a segment. The cycles (compute + roofline
        stalls, summed over the block's layers) are exact too except on the one-bit interval where a layer turns
        memory-bound, where the interpolation charges at most the stalls that ``effective_cost`` recomputes at the
        fractional mean [our assumption]. Computed once per table."""
        if self.effective is None:
            raise ValueError(f"preset {self.preset.name!r} has no dynamic precision")
        widest = self.effective.shape[2] - 1
        whole = self.effective.copy()
        whole[:, :, 0] = whole[:, :, 1]  # below one bit (never recorded) costs as one bit
        levels = np.arange(256) / PRECISION_STEPS
        low = np.minimum(np.floor(levels).astype(np.int64), widest)
        high = np.minimum(low + 1, widest)
        fraction = (levels - low)[None, None, :, None]
        interpolated = whole[:, :, low] + fraction * (whole[:, :, high] - whole[:, :, low])
        deltas = interpolated - self.block[:, :, None, :]
        deltas[:, :, 0] = 0.0
        return np.ascontiguousarray(deltas)

    def to_frame(self) -> pd.DataFrame:
        """Tidy long frame: block (-1 = the always-run layers), option (code), option_name, metric, value."""
        blocks, options, metrics = np.meshgrid(
            np.arange(self.block.shape[0]),
            np.arange(self.block.shape[1]),
            np.arange(self.block.shape[2]),
            indexing="ij",
        )
        frame = pd.DataFrame(
            {
                "block": blocks.ravel().astype(np.int64),
                "option": options.ravel().astype(np.int64),
                "metric": np.asarray(self.metrics, dtype=object)[metrics.ravel()],
                "value": self.block.ravel(),
            }
        )
        fixed = pd.DataFrame({"block": -1, "option": -1, "metric": list(self.metrics), "value": self.fixed})
        frame = pd.concat([frame, fixed], ignore_index=True)
        names = {option.code: option.name for option in self.options}
        frame.insert(2, "option_name", frame["option"].map(names).fillna("fixed"))
        frame.insert(0, "preset", self.preset.name)
        return frame


def default_cache_dir() -> Path:
    env = os.environ.get("DFS_SIM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "dfs_sim" / "cost_tables"


def table_key(layer_table: LayerTable, preset: Preset, options: Sequence[Option]) -> str:
    payload = json.dumps(
        [MODEL_VERSION, layer_table.content_hash(), preset.content_hash(), options_to_meta(tuple(options))],
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def build_cost_table(
    layer_table: LayerTable,
    preset: Preset | str,
    options: Sequence[Option] = DFS_OPTIONS,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
) -> CostTable:
    """Cost of every gated block at every option, plus the always-run layers; cached on disk (see module doc)."""
    preset = load_preset(preset)
    options = tuple(options)
    layer_table.check_options(len(options))
    key = table_key(layer_table, preset, options)
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = path / f"{preset.name}-{key}.npz"
    effective_levels = preset.array.pe_width + 1 if preset.dynamic_precision else None
    if use_cache:
        cached = _load(path, key, layer_table.num_blocks, len(options), effective_levels)
        if cached is not None:
            block, fixed, effective = cached
            return CostTable(block, fixed, preset, options, key, effective=effective)
    block, fixed, effective = _build(layer_table, preset, options, effective_levels)
    if use_cache:
        _store(path, key, block, fixed, effective)
    return CostTable(block, fixed, preset, options, key, effective=effective)


def _build(
    layer_table: LayerTable, preset: Preset, options: tuple[Option, ...], effective_levels: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``CostTable``'s block, fixed and (with ``effective_levels``, a dynamic-precision preset) effective arrays."""
    block = np.zeros((layer_table.num_blocks, len(options), len(METRICS)), dtype=np.float64)
    effective = None
    if effective_levels is not None:
        effective = np.zeros((*block.shape[:2], effective_levels, len(METRICS)), dtype=np.float64)
    for index in range(layer_table.num_blocks):
        layers = layer_table.block_layers(index)
        main = [layer for layer in layers if layer.role == "main"]
        projection = sum(
            (
                option_cost(layer, preset, _fixed_option(layer, options))
                for layer in layers
                if layer.role == "projection"
            ),
            LayerCost(),
        )
        has_projection = any(layer.role == "projection" for layer in layers)
        for code, option in enumerate(options):
            if option.is_skip:
                cost = projection if has_projection else skip_cost(main[0], preset)
            else:
                cost = sum((option_cost(layer, preset, option) for layer in narrowed(main, option.width)), projection)
            block[index, code] = cost.metrics()
            if effective is None:
                continue
            effective[index, code] = block[index, code]  # static wherever the data's bits change nothing
            if trims(option, preset):
                # up to the bits the static cost streams (ceil(a/b) passes of b bits; a for 1 bit per cycle)
                b = preset.array.act_bits_per_cycle
                for bits in range(1, min(b * -(-option.a_bits // b), effective.shape[2])):
                    run = narrowed(main, option.width)
                    trimmed = sum((effective_cost(layer, preset, option, bits) for layer in run), projection)
                    effective[index, code, bits] = trimmed.metrics()
    fixed_cost = sum(
        (option_cost(layer, preset, _fixed_option(layer, options)) for layer in layer_table.fixed_layers()), LayerCost()
    )
    return block, np.array(fixed_cost.metrics(), dtype=np.float64), effective


def _fixed_option(layer: ConvLayer, options: tuple[Option, ...]) -> Option:
    """The option a projection or a layer outside every gated block runs at; ``LayerTable`` makes sure it has one."""
    assert layer.fixed_option is not None, layer.name
    return options[layer.fixed_option]


def _checksum(key: str, block: np.ndarray, fixed: np.ndarray, effective: np.ndarray | None = None) -> str:
    digest = hashlib.sha256(key.encode())
    digest.update(np.ascontiguousarray(block, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(fixed, dtype=np.float64).tobytes())
    if effective is not None:
        digest.update(np.ascontiguousarray(effective, dtype=np.float64).tobytes())
    return digest.hexdigest()


def _load(path: Path, key: str, num_blocks: int, num_options: int, effective_levels: int | None):
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            block, fixed = data["block"].astype(np.float64), data["fixed"].astype(np.float64)
            effective = data["effective"].astype(np.float64) if effective_levels is not None else None
            stored_key, checksum = str(data["key"]), str(data["checksum"])
    except Exception:  # any unreadable file is rebuilt, never trusted
        return None
    shape = (num_blocks, num_options, len(METRICS))
    if (
        stored_key != key
        or block.shape != shape
        or fixed.shape != (len(METRICS),)
        or (effective is not None and effective.shape != (*shape[:2], effective_levels, shape[2]))
        or checksum != _checksum(key, block, fixed, effective)
    ):
        return None
    return block, fixed, effective


def _store(path: Path, key: str, block: np.ndarray, fixed: np.ndarray, effective: np.ndarray | None) -> None:
    buffer = io.BytesIO()
    arrays: dict[str, np.ndarray] = {"block": block, "fixed": fixed, "key": np.array(key)}
    if effective is not None:
        arrays["effective"] = effective
    arrays["checksum"] = np.array(_checksum(key, block, fixed, effective))
    np.savez(buffer, allow_pickle=False, **arrays)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as error:
        warnings.warn(f"{path}: cost table not cached ({error})", stacklevel=3)
