"""Fuzzing the trace reader: every corrupted file ends in TraceFormatError naming the file, or reads back exactly
the data that was written (a flipped byte in a part of the file that holds no data). Through the CLI, a failing
case is one line on stderr, exit code 2, nothing in the output folder lost and no final output written."""

import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, strategies as st

from dfs_sim.replay import main
from dfs_sim.traces import TraceFormatError, block_column, read_trace, write_trace
from tests.factories import make_run, raw_columns, write_raw
from tests.fuzzing import fuzz, outcomes_reached

ORIGINAL = make_run("dfs", depth=8, n=24, seed=11)
CASES = {"error": 0, "identical": 0}
outcomes = outcomes_reached(CASES, ("error",), "trace")


@pytest.fixture(scope="module")
def original_bytes(tmp_path_factory):
    return write_trace(tmp_path_factory.mktemp("orig") / "trace.parquet", ORIGINAL).read_bytes()


def _same_as_original(run) -> bool:
    return (
        np.array_equal(run.codes, ORIGINAL.codes)
        and np.array_equal(run.label, ORIGINAL.label)
        and np.array_equal(run.pred, ORIGINAL.pred)
        and np.array_equal(run.input_id, ORIGINAL.input_id)
        and np.array_equal(run.confidence, ORIGINAL.confidence)
        and {k: v for k, v in run.meta.items() if k != "content_hash"}
        == json.loads(json.dumps({k: v for k, v in ORIGINAL.meta.items() if k != "content_hash"}))
    )


def _check(path):
    try:
        run = read_trace(path)
    except TraceFormatError as error:
        message = str(error)
        assert str(path) in message and "\n" not in message
        CASES["error"] += 1
        return "error"
    assert _same_as_original(run), "a corrupted file read back as different data"
    CASES["identical"] += 1
    return "identical"


@fuzz(400)
@given(
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=3),
    cut=st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_flipped_and_truncated_bytes(tmp_path_factory, original_bytes, flips, cut):
    data = bytearray(original_bytes)
    for offset, mask in flips:
        data[offset % len(data)] ^= mask
    if cut is not None:
        data = data[: cut % len(data)]
    path = tmp_path_factory.mktemp("flip") / "trace.parquet"
    path.write_bytes(bytes(data))
    _check(path)


def _mutations():
    columns = list(raw_columns(ORIGINAL))
    meta_keys = [key for key in ORIGINAL.meta if key != "content_hash"]
    return st.one_of(
        st.tuples(st.just("drop"), st.sampled_from(columns)),
        st.tuples(st.just("rename"), st.sampled_from(columns), st.text("abcdefgh_0123456789", min_size=1, max_size=10)),
        st.tuples(
            st.just("dtype"),
            st.sampled_from(columns),
            st.sampled_from([pa.int8(), pa.int32(), pa.int64(), pa.float64(), pa.string(), pa.uint16()]),
        ),
        st.tuples(st.just("code"), st.integers(0, ORIGINAL.num_blocks - 1), st.integers(7, 255)),
        st.tuples(st.just("meta_drop"), st.sampled_from(meta_keys)),
        st.tuples(
            st.just("meta_value"),
            st.sampled_from([*meta_keys, "model", "options", "layers"]),
            st.one_of(st.none(), st.integers(-5, 200), st.text(max_size=5), st.just([]), st.just({})),
        ),
        st.tuples(st.just("meta_raw"), st.binary(max_size=40)),
        st.tuples(st.just("layers_depth"), st.sampled_from([14, 20, 38])),
    )


@fuzz(400)
@given(mutation=_mutations())
def test_structural_corruption(tmp_path_factory, mutation):
    from dfs_sim.layer_table import cifar_resnet_layers

    columns = raw_columns(ORIGINAL)
    meta = dict(ORIGINAL.meta, content_hash=ORIGINAL.content_hash())
    kind = mutation[0]
    if kind == "drop":
        del columns[mutation[1]]
    elif kind == "rename":
        columns = {(mutation[2] if name == mutation[1] else name): array for name, array in columns.items()}
    elif kind == "dtype":
        original = columns[mutation[1]]
        columns[mutation[1]] = original.cast(mutation[2], safe=False)
    elif kind == "code":
        codes = ORIGINAL.codes[:, mutation[1]].copy()
        codes[len(codes) // 2] = mutation[2]
        columns[block_column(mutation[1])] = pa.array(codes, pa.uint8())
    elif kind == "meta_drop":
        del meta[mutation[1]]
    elif kind == "meta_value":
        meta[mutation[1]] = mutation[2]
    elif kind == "meta_raw":
        meta = mutation[1]
    elif kind == "layers_depth":
        meta["layers"] = cifar_resnet_layers(mutation[1]).to_records()
    path = write_raw(tmp_path_factory.mktemp("mut") / "trace.parquet", columns, meta)
    outcome = _check(path)
    unchanged = (
        (kind == "rename" and mutation[1] == mutation[2])
        or (kind == "dtype" and raw_columns(ORIGINAL)[mutation[1]].type == mutation[2])
        or (kind == "meta_value" and ORIGINAL.meta.get(mutation[1]) == mutation[2])
    )
    assert outcome == "identical" if unchanged else outcome == "error"


@fuzz(60)
@given(mutation=_mutations())
def test_cli_on_corrupted_traces(tmp_path_factory, mutation, capsys):
    """Through the command: exit 2, one line on stderr naming the file, nothing in the output folder lost and no
    final output written (a bad value is found as the trace streams by, after the good trace's parts are written)."""
    folder = tmp_path_factory.mktemp("cli")
    write_trace(folder / "a_good.parquet", ORIGINAL)
    columns = raw_columns(ORIGINAL)
    meta = dict(ORIGINAL.meta, content_hash=ORIGINAL.content_hash())
    if mutation[0] in ("drop", "meta_drop"):
        (columns if mutation[0] == "drop" else meta).pop(mutation[1])
    elif mutation[0] == "code":
        codes = ORIGINAL.codes[:, mutation[1]].copy()
        codes[0] = mutation[2]
        columns[block_column(mutation[1])] = pa.array(codes, pa.uint8())
    else:
        meta = b"\x00not json"
    bad = write_raw(folder / "b_bad.parquet", columns, meta)
    out = folder / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    capsys.readouterr()
    command = [str(folder), "--out", str(out), "--presets", "bitparallel16", "--no-plots", "--quiet", "--force"]
    assert main(command) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and bad.name in captured.err and "Traceback" not in captured.err
    assert (out / "keep.txt").read_text() == "precious"
    assert not [path for path in out.rglob("*") if path.name.endswith(".tmp") or path.suffix == ".csv"]
    # per_input/ may hold the rows of the runs finished before the bad one: they are parts a rerun resumes from
    manifest = out / "manifest.json"  # if the folder was claimed, it says the replay failed, and why, in one line
    if manifest.exists():
        recorded = json.loads(manifest.read_text())
        assert recorded["status"] == "failed" and bad.name in recorded["error"] and "\n" not in recorded["error"]
