"""Fuzzing preset files, layer tables and CIFAR batch files: every bad case is the typed error, one line naming the
file, and through the CLI exit code 2 with the output folder unchanged."""

import pickle
import tomllib

import numpy as np
from hypothesis import given, strategies as st

from cost_models import list_presets, load_preset
from cost_models.preset import PRESET_DIR
from dfs_sim.errors import ConfigError, LayerTableError
from dfs_sim.layer_table import ConvLayer, LayerTable, cifar_resnet_layers
from dfs_sim.replay import main
from dfs_sim.traces import write_trace
from tests.factories import make_run
from tests.fuzzing import fuzz, outcomes_reached, toml_text

CASES = {"error": 0, "valid": 0}
outcomes = outcomes_reached(CASES, ("error",), "config, layer and data")


def _documents():
    return {name: tomllib.loads((PRESET_DIR / f"{name}.toml").read_text()) for name in list_presets()}


DOCUMENTS = _documents()
SCALARS = st.one_of(
    st.integers(-3, 300), st.floats(-1, 1e4, allow_nan=False), st.text(max_size=6), st.booleans(), st.just([1, 2])
)


def _preset_mutations():
    def keys(name):
        document = DOCUMENTS[name]
        return [(section, key) for section, table in document.items() if isinstance(table, dict) for key in table]

    def required(name):  # a preset without sram_scaling prices every buffer size alike: valid, and tested elsewhere
        return [key for key in keys(name) if key != ("energy", "sram_scaling")]

    names = st.sampled_from(sorted(DOCUMENTS))
    return names.flatmap(
        lambda name: st.one_of(
            st.tuples(st.just(name), st.just("value"), st.sampled_from(keys(name)), SCALARS),
            st.tuples(st.just(name), st.just("drop"), st.sampled_from(required(name)), st.none()),
            st.tuples(
                st.just(name),
                st.just("unknown"),
                st.sampled_from(keys(name)),
                st.text("abcxyz_", min_size=1, max_size=8),
            ),
            st.tuples(
                st.just(name),
                st.just("section"),
                st.sampled_from(["clock", "array", "buffers", "dram", "energy", "policy"]),
                st.none(),
            ),
            st.tuples(st.just(name), st.just("kind"), st.none(), st.text(max_size=10)),
            st.tuples(st.just(name), st.just("bytes"), st.none(), st.binary(min_size=1, max_size=30)),
        )
    )


def _apply(name, kind, where, new):
    document = {key: (dict(item) if isinstance(item, dict) else item) for key, item in DOCUMENTS[name].items()}
    if kind == "value":
        document[where[0]][where[1]] = new
    elif kind == "drop":
        del document[where[0]][where[1]]
    elif kind == "unknown":
        document[where[0]][where[1] + "_" + new] = 1
    elif kind == "section":
        del document[where]
    elif kind == "kind":
        document["kind"] = new
    return document


@fuzz(300)
@given(mutation=_preset_mutations())
def test_preset_files(tmp_path_factory, mutation):
    name, kind, where, new = mutation
    path = tmp_path_factory.mktemp("preset") / "fuzzed.toml"
    if kind == "bytes":
        path.write_bytes(toml_text(DOCUMENTS[name]).encode()[: len(new)] + new)
    else:
        path.write_text(toml_text(_apply(name, kind, where, new)))
    try:
        preset = load_preset(path)
    except ConfigError as error:
        assert str(path) in str(error) and "\n" not in str(error)
        CASES["error"] += 1
        return
    CASES["valid"] += 1
    # a mutation that loads must have kept a valid value: sizes positive, choices known
    assert kind in ("value", "kind") and preset.freq_mhz > 0
    assert kind != "kind" or preset.kind == new


@fuzz(40)
@given(mutation=_preset_mutations().filter(lambda m: m[1] in ("drop", "section", "unknown", "bytes")))
def test_bad_preset_through_the_cli(tmp_path_factory, mutation, capsys):
    folder = tmp_path_factory.mktemp("cli")
    write_trace(folder / "run.parquet", make_run())
    name, kind, where, new = mutation
    path = folder / "bad.toml"
    if kind == "bytes":
        path.write_bytes(b"schema_version = \x00" + new)
    else:
        path.write_text(toml_text(_apply(name, kind, where, new)))
    out = folder / "out"
    capsys.readouterr()
    assert main([str(folder), "--presets", str(path), "--out", str(out), "--no-plots", "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "bad.toml" in error and "Traceback" not in error
    assert not out.exists()


LAYER_FIELDS = st.fixed_dictionaries(
    {
        "in_ch": st.integers(-2, 70),
        "out_ch": st.integers(-2, 70),
        "in_h": st.integers(-1, 40),
        "in_w": st.integers(-1, 40),
        "kernel": st.integers(-1, 9),
        "stride": st.integers(-1, 4),
        "padding": st.integers(-2, 3),
        "groups": st.integers(-1, 8),
        "batch": st.integers(-1, 3),
        "kind": st.sampled_from(["conv", "linear", "gate", "pool", ""]),
        "role": st.sampled_from(["main", "projection", "x"]),
        "block": st.one_of(st.none(), st.integers(-1, 3)),
        "fixed_option": st.one_of(st.none(), st.integers(-1, 8)),
    }
)


@fuzz(300)
@given(fields=LAYER_FIELDS)
def test_layer_shapes(fields):
    try:
        layer = ConvLayer(name="fuzzed", **fields)
    except LayerTableError as error:
        assert "fuzzed" in str(error) and "\n" not in str(error)
        CASES["error"] += 1
        return
    CASES["valid"] += 1
    assert layer.out_h >= 1 and layer.out_w >= 1 and layer.macs > 0
    assert layer.in_ch % layer.groups == 0


@fuzz(100)
@given(index=st.integers(0, 200), fields=LAYER_FIELDS)
def test_layer_tables_in_traces(index, fields):
    records = cifar_resnet_layers(8).to_records()
    position = index % len(records)
    records[position] = dict(records[position], **fields)
    try:
        LayerTable.from_records(records, source="fuzzed.parquet")
    except LayerTableError as error:
        assert "fuzzed.parquet" in str(error)
        CASES["error"] += 1
        return
    CASES["valid"] += 1


@fuzz(100)
@given(cut=st.integers(0, 10**6), flip=st.one_of(st.none(), st.tuples(st.integers(0, 10**6), st.integers(1, 255))))
def test_truncated_cifar_batches(tmp_path_factory, cut, flip):
    from dfs_sim.model.data import DataError, load_split

    folder = tmp_path_factory.mktemp("cifar")
    rng = np.random.default_rng(0)
    batch = {b"data": rng.integers(0, 256, size=(20, 3072), dtype=np.uint8), b"labels": list(range(10)) * 2}
    data = bytearray(pickle.dumps(batch, protocol=2))
    data = data[: cut % len(data)]
    if flip is not None and data:
        data[flip[0] % len(data)] ^= flip[1]
    (folder / "test_batch").write_bytes(bytes(data))
    try:
        load_split("cifar10", "test", folder)
    except DataError as error:
        assert "test_batch" in str(error) and "\n" not in str(error)
        CASES["error"] += 1
        return
    CASES["valid"] += 1
