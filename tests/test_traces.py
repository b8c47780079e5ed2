import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dfs_sim.layer_table import cifar_resnet_layers
from dfs_sim.options import SKIPNET_OPTIONS
from dfs_sim.traces import (
    FORMAT_VERSION,
    TraceFormatError,
    TraceRun,
    _content_hash,
    block_column,
    read_trace,
    read_traces,
    write_trace,
)
from tests.factories import make_run, raw_columns, write_raw


def _assert_same(read: TraceRun, written: TraceRun) -> None:
    np.testing.assert_array_equal(read.codes, written.codes)
    for name in ("input_id", "label", "pred", "confidence"):
        np.testing.assert_array_equal(getattr(read, name), getattr(written, name))
        assert getattr(read, name).dtype == getattr(written, name).dtype
    assert read.codes.dtype == np.uint8 and read.codes.flags.c_contiguous
    assert read.layers == written.layers and read.options == written.options
    assert read.meta["content_hash"] == written.content_hash()


@pytest.mark.parametrize("method", ["dfs", "skipnet", "static"])
def test_round_trip(tmp_path, method):
    run = make_run(method, depth=14, n=64, seed=3)
    path = write_trace(tmp_path / f"{method}.parquet", run)
    read = read_trace(path)
    _assert_same(read, run)
    assert read.name == method and read.method == method
    assert read.meta["format_version"] == FORMAT_VERSION
    assert {"versions", "git_commit", "command", "created", "seed"} <= set(read.meta)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), depth=st.sampled_from([8, 14]), method=st.sampled_from(["dfs", "skipnet"]))
def test_round_trip_property(tmp_path, data, depth, method):
    num_options = 7 if method == "dfs" else 2
    blocks = cifar_resnet_layers(depth).num_blocks
    n = data.draw(st.integers(1, 40))
    codes = np.array(
        data.draw(
            st.lists(
                st.lists(st.integers(0, num_options - 1), min_size=blocks, max_size=blocks), min_size=n, max_size=n
            )
        ),
        dtype=np.uint8,
    )
    run = make_run(method, depth=depth, codes=codes, seed=data.draw(st.integers(0, 2**16)))
    _assert_same(read_trace(write_trace(tmp_path / "prop.parquet", run)), run)


def test_write_is_atomic_and_leaves_no_temporary(tmp_path):
    write_trace(tmp_path / "a.parquet", make_run())
    assert [path.name for path in tmp_path.iterdir()] == ["a.parquet"]


def test_read_traces_sorted_and_empty_folder(tmp_path):
    for name in ("b", "a", "c"):
        write_trace(tmp_path / f"{name}.parquet", make_run(seed=ord(name)))
    assert [run.name for run in read_traces(tmp_path)] == ["a", "b", "c"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TraceFormatError, match=r"no \*\.parquet"):
        read_traces(empty)
    with pytest.raises(TraceFormatError, match="no such folder"):
        read_traces(tmp_path / "missing")


def _expect(path, message):
    with pytest.raises(TraceFormatError, match=message) as caught:
        read_trace(path)
    text = str(caught.value)
    assert str(path) in text and "\n" not in text


def test_not_parquet_and_truncated(tmp_path):
    (tmp_path / "text.parquet").write_text("hello")
    _expect(tmp_path / "text.parquet", "not a readable Parquet")
    good = write_trace(tmp_path / "good.parquet", make_run())
    data = good.read_bytes()
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(data[: len(data) // 2])
    _expect(truncated, "not a readable Parquet")


def test_flipped_byte_is_detected(tmp_path):
    good = write_trace(tmp_path / "good.parquet", make_run(n=200))
    data = bytearray(good.read_bytes())
    failures = 0
    for offset in range(4, len(data) - 8, max(1, len(data) // 97)):
        flipped = tmp_path / "flipped.parquet"
        corrupted = bytearray(data)
        corrupted[offset] ^= 0x5A
        flipped.write_bytes(bytes(corrupted))
        try:
            run = read_trace(flipped)
        except TraceFormatError:
            failures += 1
            continue
        # a flip that still reads must not have changed any value (e.g. it hit unused padding)
        _assert_same(run, read_trace(good))
    assert failures > 0


def test_column_problems(tmp_path):
    run = make_run()
    columns = raw_columns(run)
    meta = dict(run.meta, content_hash=run.content_hash())

    missing = dict(columns)
    del missing["label"]
    _expect(write_raw(tmp_path / "nolabel.parquet", missing, meta), "'label' is missing")

    no_code = dict(columns)
    del no_code[block_column(1)]
    _expect(write_raw(tmp_path / "nocode.parquet", no_code, meta), "code columns .* missing")

    extra = dict(columns, **{block_column(run.num_blocks): columns[block_column(0)]})
    _expect(write_raw(tmp_path / "extra.parquet", extra, meta), "unexpected columns")

    wrong_type = dict(columns, label=pa.array(run.label, pa.int64()))
    _expect(write_raw(tmp_path / "dtype.parquet", wrong_type, meta), "'label' has type int64")

    wrong_code_type = dict(columns, **{block_column(0): pa.array(run.codes[:, 0], pa.int32())})
    _expect(write_raw(tmp_path / "codetype.parquet", wrong_code_type, meta), "expected uint8")

    empty = {name: array.slice(0, 0) for name, array in columns.items()}
    _expect(write_raw(tmp_path / "empty.parquet", empty, meta), "no rows")


def _meta_for(run: TraceRun, columns: dict) -> dict:
    """The run's metadata with a content hash that matches ``columns``, so the checks after the hash are reached."""
    codes = np.stack([columns[block_column(b)].to_numpy() for b in range(run.num_blocks)], axis=1)
    values = [columns[name].to_numpy() for name in ("input_id", "label", "pred", "confidence")]
    return dict(run.meta, content_hash=_content_hash(run.meta, *values, codes))


def test_value_problems(tmp_path):
    run = make_run()
    codes = run.codes[:, 1].copy()
    codes[5] = 7
    out_of_range = dict(raw_columns(run), **{block_column(1): pa.array(codes, pa.uint8())})
    _expect(
        write_raw(tmp_path / "range.parquet", out_of_range, _meta_for(run, out_of_range)),
        "'block_01' has option code 7",
    )

    duplicate_ids = dict(raw_columns(run), input_id=pa.array(np.zeros(run.num_inputs, np.int64)))
    _expect(write_raw(tmp_path / "dup.parquet", duplicate_ids, _meta_for(run, duplicate_ids)), "duplicate")

    bad_label = dict(raw_columns(run), label=pa.array(np.full(run.num_inputs, 10), pa.int16()))
    _expect(write_raw(tmp_path / "label.parquet", bad_label, _meta_for(run, bad_label)), "outside 0..9")

    changed = dict(raw_columns(run), pred=pa.array((run.pred + 1) % 10, pa.int16()))
    _expect(
        write_raw(tmp_path / "hash.parquet", changed, dict(run.meta, content_hash=run.content_hash())), "content hash"
    )


def test_metadata_problems(tmp_path):
    run = make_run()
    columns = raw_columns(run)
    meta = dict(run.meta, content_hash=run.content_hash())
    _expect(write_raw(tmp_path / "nometa.parquet", columns, None), "metadata key 'dfs_sim' is missing")
    _expect(write_raw(tmp_path / "badjson.parquet", columns, b"{not json"), "not valid JSON")
    _expect(write_raw(tmp_path / "version.parquet", columns, dict(meta, format_version=99)), "format_version 99")
    lacking = {key: value for key, value in meta.items() if key != "seed"}
    _expect(write_raw(tmp_path / "lacking.parquet", columns, lacking), "lacks \\['seed'\\]")
    _expect(write_raw(tmp_path / "method.parquet", columns, dict(meta, method="two words")), "'method'")
    _expect(write_raw(tmp_path / "options.parquet", columns, dict(meta, options=[])), "'options'")
    text_classes = dict(meta, model=dict(meta["model"], num_classes="10"))
    _expect(write_raw(tmp_path / "classes.parquet", columns, text_classes), "'model.num_classes' must be a positive")
    # a layer table with a different number of gated blocks than the code columns
    other = cifar_resnet_layers(14).to_records()
    _expect(write_raw(tmp_path / "layers.parquet", columns, dict(meta, layers=other)), "gated blocks")
    broken = [dict(record) for record in meta["layers"]]
    broken[0]["in_ch"] = -1
    _expect(write_raw(tmp_path / "shape.parquet", columns, dict(meta, layers=broken)), "in_ch")
    assert json.loads(json.dumps(meta))  # the good metadata itself is plain JSON


def test_constructing_an_invalid_run_fails_before_writing(tmp_path):
    run = make_run()
    with pytest.raises(TraceFormatError, match="shape"):
        TraceRun(
            meta=run.meta,
            codes=run.codes[:, :1],
            input_id=run.input_id,
            label=run.label,
            pred=run.pred,
            confidence=run.confidence,
        )
    assert not list(tmp_path.iterdir())


def test_chunked_transpose_equals_numpy_transpose():
    from dfs_sim.traces import _transpose

    by_block = np.random.default_rng(0).integers(0, 7, size=(5, 30), dtype=np.uint8)
    for chunk in (1, 7, 30, 64):
        codes = _transpose(by_block, chunk=chunk)
        assert codes.flags.c_contiguous and np.array_equal(codes, by_block.T)


def test_a_budget_outside_0_to_100_is_refused_on_write_and_on_read(tmp_path):
    import json

    import pyarrow.parquet as pq

    from dfs_sim.errors import TraceFormatError
    from dfs_sim.traces import make_meta
    from tests.factories import make_run

    run = make_run("dfs", n=10)
    kept = {key: run.meta[key] for key in ("method", "model", "seed")}
    with pytest.raises(TraceFormatError, match=r"budget must be a percentage in 0\.\.100"):
        make_meta(**kept, budget=-5, options=run.options, layers=run.layers)
    path = write_trace(tmp_path / "bad.parquet", run)
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"dfs_sim"])
    pq.write_table(table.replace_schema_metadata({b"dfs_sim": json.dumps({**meta, "budget": 150.0}).encode()}), path)
    with pytest.raises(TraceFormatError, match=r"'budget' must be a percentage in 0\.\.100"):
        read_trace(path)


def _toy_arguments(**changes):
    from dfs_sim.layer_table import ConvLayer

    rng = np.random.default_rng(0)
    arguments = {
        "name": "toy",
        "method": "early_exit",
        "layers": [
            ConvLayer(1, 8, 8, 8, 3, 1, 1, name="stem", fixed_option=2),
            ConvLayer(8, 8, 8, 8, 3, 1, 1, name="unit0", block=0),
            ConvLayer(8, 10, 1, 1, 1, name="head", kind="linear", fixed_option=2),
        ],
        "options": ["skip", "q4", "fp"],
        "codes": rng.integers(0, 3, (20, 1)),
        "labels": rng.integers(0, 10, 20),
        "predictions": rng.integers(0, 10, 20),
        "confidences": rng.random(20),
        "dataset": "fashion-mnist",
        "num_classes": 10,
    }
    return {**arguments, **changes}


def test_new_trace_fills_the_provenance_and_any_method_or_model_reads_back(tmp_path):
    from dfs_sim.traces import FORMAT_VERSION, new_trace

    run = new_trace(**_toy_arguments(model={"arch": "tiny-cnn"}, budget=None, seed=3))
    path = write_trace(tmp_path / "toy.parquet", run)
    again = read_trace(path)
    assert again.method == "early_exit" and again.meta["format_version"] == FORMAT_VERSION == 4
    assert again.meta["model"] == {"arch": "tiny-cnn", "dataset": "fashion-mnist", "num_classes": 10}
    assert {"versions", "git_commit", "command", "created"} <= set(again.meta) and again.meta["seed"] == 3
    np.testing.assert_array_equal(again.codes, run.codes)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"codes": np.full((20, 1), 3)}, "codes: must be integers in 0..2"),
        ({"codes": np.zeros((20, 2), dtype=int)}, r"codes: must be \(inputs x 1 gated units\)"),
        ({"labels": np.zeros(19, dtype=int)}, r"labels: must have one value per input \(20\)"),
        ({"predictions": np.full(20, 10)}, "predictions: must be integers in 0..9"),
        ({"confidences": np.full(20, 1.5)}, r"confidences: must be numbers in \[0, 1\]"),
        ({"input_ids": np.zeros(20, dtype=int)}, "input_ids: must be 20 distinct integers"),
        ({"options": ["skip", "q4"]}, "options: the list needs exactly one full-precision"),
        ({"options": "skip,fp"}, "options: must be a list"),
        ({"options": ["skip", "q4", SKIPNET_OPTIONS[1]]}, "options: give option names or Option objects, not a mix"),
        ({"budget": -5}, "budget must be a percentage in 0..100"),
        ({"method": "two words"}, "method must be a name"),
        ({"num_classes": 0}, "num_classes: must be a positive integer"),
        ({"layers": []}, "layers: the layer table is empty"),
    ],
)
def test_new_trace_names_the_bad_parameter(changes, needle):
    from dfs_sim.traces import new_trace

    with pytest.raises(TraceFormatError, match=needle) as caught:
        new_trace(**_toy_arguments(**changes))
    assert str(caught.value).startswith("new_trace: ") and "\n" not in str(caught.value)
