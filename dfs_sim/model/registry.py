"""A model registry in the manner of timm: ``create_model("dfs_resnet38")``; an unknown name lists the valid ones.

Methods: ``dfs`` (seven options, softmax gate), ``dfs_binary`` (the DFS gate and training with SkipNet's two options:
a binary-option ablation of DFS), ``skipnet`` (SkipNet's sigmoid gate, trained as its authors do) and ``static``
(every gated block at one option, no gate)."""

from __future__ import annotations

from collections.abc import Callable

from dfs_sim.errors import ConfigError, did_you_mean
from dfs_sim.model.resnet import GatedResNet
from dfs_sim.options import DFS_OPTIONS, SKIPNET_OPTIONS

__all__ = ["MODEL_DEPTHS", "create_model", "list_models", "parse_model_name", "register_model"]

MODEL_DEPTHS = (8, 14, 20, 38, 74)
_REGISTRY: dict[str, Callable[..., GatedResNet]] = {}
_METHODS = {  # method → (options, gate)
    "dfs": (DFS_OPTIONS, "softmax"),
    "dfs_binary": (SKIPNET_OPTIONS, "softmax"),
    "skipnet": (SKIPNET_OPTIONS, "sigmoid"),
    "static": (DFS_OPTIONS, "softmax"),
}


def register_model(name: str) -> Callable:
    def decorate(factory: Callable[..., GatedResNet]) -> Callable[..., GatedResNet]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorate


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, **overrides) -> GatedResNet:
    """Build a registered model; keyword ``overrides`` (e.g. ``num_classes=100``, ``option=1``) beat the defaults."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        hint = did_you_mean(name, list_models())
        raise ConfigError("create_model", f"unknown model {name!r}{hint}; valid: {', '.join(list_models())}") from None
    try:
        return factory(**overrides)
    except TypeError as error:
        raise ConfigError("create_model", f"{name}: {error}") from None


def parse_model_name(name: str) -> tuple[str, int]:
    """``"dfs_resnet38"`` → ``("dfs", 38)``; ``"dfs_binary_resnet38"`` → ``("dfs_binary", 38)``."""
    if name not in _REGISTRY:
        create_model(name)  # raises the listing error
    method, _, arch = name.rpartition("_")
    return method, int(arch.removeprefix("resnet"))


def _register(method: str, depth: int) -> None:
    options, gate = _METHODS[method]

    if method == "static":

        def factory(
            option: int | tuple[int, ...] = DFS_OPTIONS[-1].code,
            num_classes: int = 10,
            options: tuple = options,
            **kwargs,
        ) -> GatedResNet:
            return GatedResNet(depth, num_classes, options, static_option=option, **kwargs)
    else:

        def factory(num_classes: int = 10, options: tuple = options, **kwargs) -> GatedResNet:
            return GatedResNet(depth, num_classes, options, gate=gate, **kwargs)

    register_model(f"{method}_resnet{depth}")(factory)


for _method in _METHODS:
    for _depth in MODEL_DEPTHS:
        _register(_method, _depth)
