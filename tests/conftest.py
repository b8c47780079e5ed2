"""Shared fixtures. The fuzzing settings live in ``tests/fuzzing.py``."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _cost_table_cache(tmp_path_factory):
    """Cost tables go to a temporary folder, never the user's ``~/.cache/dfs_sim``, unless ``DFS_SIM_CACHE`` is set."""
    if os.environ.get("DFS_SIM_CACHE"):
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DFS_SIM_CACHE", str(tmp_path_factory.mktemp("cost_tables")))
        yield
