"""Kind registry: preset ``kind`` → the function that maps a layer onto that accelerator's array."""

from __future__ import annotations

from collections.abc import Callable

from cost_models import bitfusion, bitparallel, bitserial

__all__ = ["KIND_MODELS", "array_mapping_for"]

KIND_MODELS: dict[str, Callable] = {
    "bitfusion": bitfusion.array_mapping,
    "bitserial": bitserial.array_mapping,
    "bitparallel": bitparallel.array_mapping,
}


def array_mapping_for(kind: str) -> Callable:
    try:
        return KIND_MODELS[kind]
    except KeyError:
        raise KeyError(f"unknown accelerator kind {kind!r}; valid: {sorted(KIND_MODELS)}") from None
