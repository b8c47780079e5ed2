"""docs/python.md runs: its Python blocks, in order, in one namespace, from a copy of the page's working folder."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "python.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


def test_the_page_has_the_examples_the_issue_asks_for():
    text = "\n".join(_blocks())
    for needed in ("layer_costs(", "new_trace(", "replay(", "run_sweep(", "out=None"):
        assert needed in text, needed


def test_every_python_block_of_docs_python_md_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # the page reads the bundle from the repository root
    monkeypatch.setenv("DFS_SIM_CACHE", str(tmp_path / "cache"))
    namespace: dict = {"__name__": "docs_python"}
    for number, block in enumerate(_blocks(), start=1):
        try:
            exec(compile(block, f"docs/python.md block {number}", "exec"), namespace)
        except Exception as error:  # name the block: the traceback points into it
            raise AssertionError(f"docs/python.md block {number} failed: {type(error).__name__}: {error}") from error
    assert os.path.isfile(tmp_path / "my_traces" / "my_early_exit.parquet")
    assert "codes: must be integers in 0..3" in capsys.readouterr().out
