"""Torch lives only in dfs_sim/model/: no module outside it imports torch (hardware users install no torch)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dfs_sim", "cost_models", "analysis", "benchmarks")


def _imports_torch(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if any(name == "torch" or name.startswith("torch.") for name in names):
            lines.append(node.lineno)
    return lines


def test_only_the_model_package_imports_torch():
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative.parts[:2] == ("dfs_sim", "model"):
                continue
            offenders += [f"{relative}:{line}" for line in _imports_torch(path)]
    assert not offenders, f"torch imported outside dfs_sim/model/: {offenders}"


def test_the_walk_finds_the_model_package_and_its_torch_imports():
    # guards the test above against walking nothing
    model_files = list((ROOT / "dfs_sim" / "model").rglob("*.py"))
    assert len(model_files) >= 8
    assert any(_imports_torch(path) for path in model_files)
