"""Shared pieces of the fuzz tests: hypothesis settings (``DFS_SIM_FUZZ_SCALE`` multiplies the number of fuzzing
cases; CI: 1, locally e.g. 20), a TOML writer for fuzzed documents, and the check that a module's fuzzers reached the
outcomes they exist for."""

import json
import math
import os

import pytest
from hypothesis import HealthCheck, settings

FUZZ_SCALE = max(1, int(os.environ.get("DFS_SIM_FUZZ_SCALE", "1")))


def fuzz_examples(base: int) -> int:
    return base * FUZZ_SCALE


def fuzz(base: int) -> settings:
    """``base`` examples times ``FUZZ_SCALE``, reproducible (derandomized, no example database), no deadline."""
    return settings(
        max_examples=fuzz_examples(base),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )


def _literal(item) -> str:
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, str):
        return json.dumps(item)  # a TOML basic string (json's escapes are TOML's)
    if isinstance(item, float) and not math.isfinite(item):
        return "nan" if math.isnan(item) else ("inf" if item > 0 else "-inf")
    if isinstance(item, list):
        return "[" + ", ".join(_literal(entry) for entry in item) + "]"
    if isinstance(item, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_literal(v)}" for k, v in item.items()) + "}"
    return repr(item)


def toml_text(document: dict) -> str:
    """``document`` as TOML: top-level values, then one table per dict-valued key (values as fuzzed, even nan)."""
    lines = [f"{json.dumps(key)} = {_literal(item)}" for key, item in document.items() if not isinstance(item, dict)]
    for section, table in document.items():
        if isinstance(table, dict):
            lines.append(f"[{json.dumps(section)}]")
            lines += [f"{json.dumps(key)} = {_literal(item)}" for key, item in table.items()]
    return "\n".join(lines) + "\n"


def outcomes_reached(cases: dict[str, int], required: tuple[str, ...], what: str):
    """A module-scoped autouse fixture: after the module's tests, whenever its fuzzers ran (``cases`` counted
    something), each ``required`` outcome was reached at least once; a fuzzer whose mutations never reach one tests
    less than it claims."""

    @pytest.fixture(scope="module", autouse=True)
    def fixture():
        yield
        if any(cases.values()):
            missing = [name for name in required if not cases[name]]
            assert not missing, f"fuzzed {what} cases never reached {missing}: {cases}"

    return fixture
