"""The gated ResNet: registry, layer table from hooks, grouped inference, efficient training forward."""

import copy
import subprocess
import sys

import pytest
import torch

from dfs_sim.errors import ConfigError
from dfs_sim.layer_table import cifar_resnet_layers
from dfs_sim.model.registry import create_model, list_models
from dfs_sim.model.resnet import traced_layer_table
from dfs_sim.options import DFS_OPTIONS, SKIPNET_OPTIONS


def test_registry_names_and_unknown_name_lists_valid_ones():
    names = list_models()
    for name in (
        "dfs_resnet38",
        "dfs_resnet74",
        "skipnet_resnet38",
        "skipnet_resnet74",
        "dfs_binary_resnet38",
        "static_resnet38",
        "dfs_resnet8",
        "dfs_resnet14",
        "dfs_resnet20",
    ):
        assert name in names
    with pytest.raises(ConfigError, match="dfs_resnet38") as error:
        create_model("dfs_resnet39")
    assert "skipnet_resnet74" in str(error.value)
    assert create_model("static_resnet38", option=1).static_option == 1
    assert create_model("dfs_resnet8", num_classes=100).fc.out_features == 100


@pytest.mark.parametrize("name", list_models())
def test_traced_layer_table_equals_cifar_resnet_layers(name):
    model = create_model(name, num_classes=10)
    options = SKIPNET_OPTIONS if name.startswith(("skipnet", "dfs_binary")) else DFS_OPTIONS
    assert model.options == options
    table = traced_layer_table(model)
    static = name.startswith("static")
    gate_outputs = 1 if name.startswith("skipnet") else None  # SkipNet's sigmoid gate: one output
    expected = cifar_resnet_layers(
        model.depth, num_classes=10, options=options, gates=not static, gate_outputs=gate_outputs
    )
    assert table == expected
    assert any(layer.kind == "gate" for layer in table) != static  # a static baseline runs, and pays, no gate
    assert table.num_blocks == model.num_gated == (model.depth - 2) // 2 - 1


def _calibrated(name, seed=0):
    torch.manual_seed(seed)
    model = create_model(name)
    model.train()
    with torch.no_grad():  # set BN statistics and activation ranges, as training would
        model.forward_candidates_reference(torch.randn(16, 3, 32, 32), naive=True)
    with torch.no_grad():  # spread the gate's choices over many options
        model.controller.fc.weight.mul_(50)
    return model


def test_grouped_inference_equals_all_candidates_forward():
    model = _calibrated("dfs_resnet14").eval()
    x = torch.randn(32, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        mixed = model.forward_candidates(x)
        grouped = model.forward_grouped(x)
    assert len(torch.unique(grouped.codes)) >= 3
    assert torch.equal(mixed.codes, grouped.codes)
    assert torch.allclose(mixed.logits, grouped.logits, atol=1e-4, rtol=1e-4)
    assert torch.equal(model(x).codes, grouped.codes)  # eval-mode forward is the grouped path


def test_static_model_runs_one_option_without_gates():
    model = create_model("static_resnet8", option=2).eval()
    out = model(torch.randn(4, 3, 32, 32))
    assert out.probs is None and torch.equal(out.codes, torch.full((4, 2), 2))
    assert model.computation_pct(out.masks).item() == pytest.approx(100 * (10 / 32) ** 2)


@pytest.mark.parametrize("name", ["dfs_resnet8", "dfs_binary_resnet8", "skipnet_resnet8"])
def test_efficient_candidates_give_the_naive_gradients(name):
    base = _calibrated(name, seed=1)
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    y = torch.randint(0, 10, (8,), generator=torch.Generator().manual_seed(5))
    grads, codes = [], []
    for naive in (True, False):
        model = copy.deepcopy(base).train()
        out = model.forward_candidates_reference(x, naive=naive)
        loss = torch.nn.functional.cross_entropy(out.logits, y) + 0.01 * model.computation_cost(out.masks)
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        codes.append(out.codes)
    assert torch.equal(codes[0], codes[1])
    for key in grads[0].keys() | grads[1].keys():  # a parameter no candidate used has no gradient (or a zero one)
        a = grads[0].get(key, torch.zeros(()))
        b = grads[1].get(key, torch.zeros(()))
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), key
    assert any(g.abs().sum() > 0 for k, g in grads[1].items() if k.startswith("controller"))


def test_no_hard_coded_cuda_and_light_package_import():
    from pathlib import Path

    import dfs_sim

    model_files = sorted((Path(dfs_sim.__file__).parent / "model").glob("*.py"))
    assert len(model_files) >= 8
    for path in model_files:
        assert ".cuda()" not in path.read_text(), path
    code = "import sys, dfs_sim, dfs_sim.traces, dfs_sim.layer_table; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
