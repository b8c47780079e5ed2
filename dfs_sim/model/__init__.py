"""The model side (PyTorch): quantizer, gate, gated CIFAR ResNet, registry, data, training, checkpoints, inference,
export. Only this package imports torch; everything outside it speaks the torch-free vocabulary of :mod:`dfs_sim`.
"""

from dfs_sim.model.registry import create_model, list_models

__all__ = ["create_model", "list_models"]
