"""Fuzzing the model side's inputs: training-config TOML files (mutated keys, types, values, stage tables, garbage
bytes) and checkpoints (wrong model name or depth, truncated, flipped or random bytes, torch files that are not
checkpoints, state dicts with missing, extra or mis-shaped weights). Every case either validates or raises a
``DfsSimError`` naming the file in one line, never another exception; through ``python -m dfs_sim.train`` and
``python -m dfs_sim.export`` a failing case is exit code 2, one line on stderr, and nothing written."""

import math
import tomllib
from pathlib import Path

import pytest
import torch
from hypothesis import given, strategies as st

from dfs_sim.errors import DfsSimError
from dfs_sim.model.checkpoint import load_backbone_into, load_checkpoint
from dfs_sim.model.config import STAGES, TrainConfig, load_train_config
from dfs_sim.model.export import main as export_main, open_for_export
from dfs_sim.model.registry import create_model, list_models
from dfs_sim.model.training import main as train_main
from tests.fuzzing import fuzz, outcomes_reached, toml_text
from tests.test_cli_errors import make_checkpoint

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = tomllib.loads((ROOT / "examples" / "digits_r38.toml").read_text())
CASES = {"error": 0, "valid": 0}
outcomes = outcomes_reached(CASES, ("error", "valid"), "training config and checkpoint")


# --- training configs -----------------------------------------------------------------------------------------------
TOP_KEYS = [
    *sorted(key for key in EXAMPLE if not isinstance(EXAMPLE[key], dict)),
    "model",
    "dataset",
    "data_path",
    "out_dir",
    "stages",
    "budget",
    "init_from",
    "device",
    "validation_fraction",
    "eval_every",
    "keep",
    "precision",
    "deterministic",
]
STAGE_KEYS = ["iterations", "lr", "milestones", "momentum", "weight_decay"]
WORDS = st.sampled_from(
    [
        "auto",
        "cpu",
        "cuda",
        "cuda:0",
        "cuda:7",
        "gpu",
        "cuda:-1",
        "digits",
        "cifar10",
        "cifar100",
        "imagenet",
        "dfs_resnet8",
        "skipnet_resnet14",
        "static_resnet8",
        "resnet50",
        "none",
        "crop",
        "crop_flip",
        "backbone",
        "gate",
        "joint",
        "best",
        "last",
        "bf16",
        "",
        "runs/x",
        "b.pt",
    ]
)
SCALARS = st.one_of(
    st.integers(-3, 400),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    WORDS,
    st.text(max_size=8),
    st.lists(st.one_of(st.integers(-2, 70000), WORDS), max_size=4),
    st.just({"x": 1}),
)
STAGE_LISTS = st.lists(st.sampled_from([*STAGES, "warmup", ""]), max_size=4)


def _config_mutations():
    return st.lists(
        st.one_of(
            st.tuples(st.just("value"), st.sampled_from(TOP_KEYS), SCALARS),
            st.tuples(st.just("drop"), st.sampled_from(TOP_KEYS), st.none()),
            st.tuples(st.just("unknown"), st.text(min_size=1, max_size=8), SCALARS),
            st.tuples(st.just("stages"), st.none(), STAGE_LISTS),
            st.tuples(
                st.just("stage_value"),
                st.tuples(st.sampled_from([*STAGES, "warmup"]), st.sampled_from(STAGE_KEYS)),
                SCALARS,
            ),
            st.tuples(st.just("stage_unknown"), st.sampled_from(STAGES), st.text(min_size=1, max_size=8)),
            st.tuples(st.just("stage_table"), st.sampled_from(STAGES), SCALARS),
            st.tuples(
                st.just("stage_drop"), st.tuples(st.sampled_from(STAGES), st.sampled_from(STAGE_KEYS)), st.none()
            ),
            st.tuples(st.just("bytes"), st.integers(0, 10**4), st.binary(max_size=30)),
        ),
        min_size=1,
        max_size=3,
    )


def _write_config(path: Path, mutations) -> None:
    document = {key: (dict(value) if isinstance(value, dict) else value) for key, value in EXAMPLE.items()}
    garbage = None
    for kind, where, new in mutations:
        if kind == "value":
            document[where] = new
        elif kind == "drop":
            document.pop(where, None)
        elif kind == "unknown":
            document[where] = new
        elif kind == "stages":
            document["stages"] = new
        elif kind == "stage_value":
            table = document.setdefault(where[0], {})
            if isinstance(table, dict):
                table[where[1]] = new
        elif kind == "stage_unknown":
            if isinstance(document.get(where), dict):
                document[where][new] = 1
        elif kind == "stage_table":
            document[where] = new
        elif kind == "stage_drop":
            if isinstance(document.get(where[0]), dict):
                document[where[0]].pop(where[1], None)
        elif kind == "bytes":
            garbage = (where, new)
    text = toml_text(document).encode()
    if garbage is not None:
        text = text[: garbage[0] % (len(text) + 1)] + garbage[1]
    path.write_bytes(text)


def _valid_config(config: TrainConfig) -> None:
    """What a validated config guarantees."""
    assert isinstance(config, TrainConfig) and isinstance(config.out_dir, str) and config.out_dir
    assert config.model in list_models()
    if config.model.startswith("static_"):  # a static model trains only its quantization-aware stage
        assert config.static_options and config.stages == ("qat",)
    assert config.stages and ("backbone" in config.stages or config.init_from is not None)
    assert 0 <= config.budget <= 100 and config.batch_size >= 1 and config.seed >= 0
    assert config.device in ("auto", "cpu") or config.device.startswith("cuda")
    for name in STAGES:
        stage = config.stage(name)
        assert stage.iterations >= 0 and stage.lr > 0 and math.isfinite(stage.lr)
        assert list(stage.milestones) == sorted(stage.milestones)
        assert all(0 < m < stage.iterations for m in stage.milestones)


@fuzz(200)
@given(mutations=_config_mutations())
def test_training_config_files(tmp_path_factory, mutations):
    path = tmp_path_factory.mktemp("config") / "fuzzed.toml"
    _write_config(path, mutations)
    try:
        config = load_train_config(path)
    except DfsSimError as error:
        assert str(path) in str(error) and "\n" not in str(error), str(error)
        CASES["error"] += 1
        return
    CASES["valid"] += 1
    _valid_config(config)


CLI_VALUES = st.one_of(
    WORDS,
    st.text(alphabet="abcxyz0129.,-:=[]\"' ", max_size=10),
    st.integers(-5, 100000).map(str),
    st.sampled_from(["nan", "inf", "-1e9", "1e400", "0", "50"]),
)
CLI_FLAGS = st.sampled_from(
    [
        "--model",
        "--stages",
        "--device",
        "--seed",
        "--batch-size",
        "--budget",
        "--beta",
        "--init-from",
        "--checkpoint-every",
        "--set",
    ]
)
SET_KEYS = st.sampled_from(
    [
        "model",
        "stages",
        "seed",
        "budget",
        "device",
        "augment",
        "batch_size",
        "init_from",
        "joint.iterations",
        "joint.milestones",
        "backbone.lr",
        "gate.momentum",
        "joint",
        "backbone.bogus",
        "bogus",
        "keep",
        "",
        "a.b.c",
    ]
)


@fuzz(50)
@given(mutations=_config_mutations(), flag=st.one_of(st.none(), st.tuples(CLI_FLAGS, CLI_VALUES, SET_KEYS)))
def test_training_configs_through_the_cli(tmp_path_factory, mutations, flag, capsys):
    """Every case fails: a bad config on its file or option, a good one on the missing CIFAR folder — both before
    anything is written."""
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "fuzzed.toml"
    _write_config(path, mutations)
    out = folder / "out"
    argv = [
        "--config",
        str(path),
        "--dataset",
        "cifar10",
        "--data-path",
        str(folder / "no_cifar"),
        "--out-dir",
        str(out),
        "--stop-after",
        "0",
        "--no-progress",
    ]
    if flag is not None:
        name, value, key = flag
        if name == "--set":
            value = f"{key}={value}"
        if name in ("--seed", "--batch-size", "--checkpoint-every") and not value.lstrip("-").isdigit():
            value = "3"  # argparse's own usage errors are not this project's one-line errors
        if name in ("--budget", "--beta"):
            try:
                float(value)
            except ValueError:
                value = "40"
        argv.append(f"{name}={value}")  # one word, so that a value starting with "-" is not taken for an option
    capsys.readouterr()
    try:
        load_train_config(path, {"dataset": "cifar10", "data_path": str(folder / "no_cifar"), "out_dir": str(out)})
        names = []
    except DfsSimError:
        names = [str(path)]
        if flag is not None:
            names = []  # an option may fail first, or override the bad key
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert all(name in err for name in names), err
    assert not out.exists()
    CASES["error"] += 1


# --- checkpoints ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bases")
    paths = {
        "joint": make_checkpoint(folder / "joint.pt"),
        "backbone": make_checkpoint(folder / "backbone.pt", stage="backbone"),
        "r14": make_checkpoint(folder / "r14.pt", "dfs_resnet14", stage="backbone"),
        "skipnet": make_checkpoint(folder / "skipnet.pt", "dfs_binary_resnet8"),
    }
    return {name: (path.read_bytes(), load_checkpoint(path)) for name, path in paths.items()}


VALUES = st.one_of(
    st.none(),
    st.integers(-3, 200),
    st.floats(allow_nan=True),
    st.booleans(),
    st.sampled_from([*list_models(), "resnet50", "dfs_resnet9", "", "joint", "gate", "backbone"]),
    st.text(max_size=6),
    st.just([1, 2]),
    st.just({"a": 1}),
    st.just(torch.zeros(2)),
)
FIELDS = ["format", "model_name", "num_classes", "model", "stage", "iteration", "config", "seed"]
CONFIG_FIELDS = ["dataset", "data_path", "split_seed", "budget"]
FOREIGN = st.sampled_from(["tensor", "list", "dict", "state_dict", "other_format", "format_only", "module"])


def _checkpoint_mutations():
    bases = st.sampled_from(["joint", "backbone", "r14", "skipnet"])
    return st.one_of(
        st.tuples(st.just("cut"), bases, st.integers(0, 10**7)),
        st.tuples(
            st.just("flip"),
            bases,
            st.lists(st.tuples(st.integers(0, 10**7), st.integers(1, 255)), min_size=1, max_size=3),
        ),
        st.tuples(st.just("random"), st.none(), st.binary(max_size=200)),
        st.tuples(st.just("foreign"), st.none(), FOREIGN),
        st.tuples(st.just("field"), bases, st.tuples(st.sampled_from(FIELDS), VALUES)),
        st.tuples(st.just("drop_field"), bases, st.sampled_from(FIELDS)),
        st.tuples(st.just("config"), bases, st.tuples(st.sampled_from(CONFIG_FIELDS), VALUES)),
        st.tuples(st.just("rename"), bases, st.sampled_from(list_models())),
        st.tuples(
            st.just("state"),
            bases,
            st.tuples(st.sampled_from(["drop", "extra", "shape", "value"]), st.integers(0, 10**4), st.integers(1, 5)),
        ),
    )


def _write_checkpoint(path: Path, bases, mutation) -> None:
    kind, base, change = mutation
    if kind in ("cut", "flip"):
        data = bytearray(bases[base][0])
        if kind == "cut":
            data = data[: change % len(data)]
        else:
            for offset, mask in change:
                data[offset % len(data)] ^= mask
        path.write_bytes(bytes(data))
        return
    if kind == "random":
        path.write_bytes(change)
        return
    if kind == "foreign":
        state = create_model("dfs_resnet8").state_dict()
        obj = {
            "tensor": torch.ones(3),
            "list": [1, 2, 3],
            "dict": {"a": 1},
            "state_dict": state,
            "other_format": {"format": "someone_else/1", "model": state},
            "format_only": {"format": bases["joint"][1]["format"]},
            "module": {"format": bases["joint"][1]["format"], "model_name": "dfs_resnet8"},
        }[change]
        torch.save(obj, path)
        return
    record = dict(bases[base][1])
    record["model"] = dict(record["model"])
    record["config"] = dict(record["config"])
    if kind == "field":
        record[change[0]] = change[1]
    elif kind == "drop_field":
        del record[change]
    elif kind == "config":
        record["config"][change[0]] = change[1]
    elif kind == "rename":
        record["model_name"] = change
    elif kind == "state":
        action, index, count = change
        keys = sorted(record["model"])
        chosen = [keys[(index + i) % len(keys)] for i in range(count)]
        for key in chosen:
            if action == "drop":
                del record["model"][key]
            elif action == "extra":
                record["model"][key + ".extra"] = torch.zeros(1)
            elif action == "shape":
                record["model"][key] = torch.zeros(*record["model"][key].shape, 2)
            else:
                record["model"][key] = 0.5
    torch.save(record, path)


def _use(path: Path, static) -> None:
    """What the commands do with a checkpoint before any data is loaded: open it for export, and load it as the
    backbone of the model it names (``--init-from``)."""
    source = open_for_export(path, static)
    assert source.method in ("dfs", "dfs_binary", "static") and source.model.depth in (8, 14)
    record = source.record
    target = record["model_name"].replace("static_", "dfs_")
    load_backbone_into(create_model(target, num_classes=record["num_classes"]), record, path, target)


@fuzz(150)
@given(mutation=_checkpoint_mutations(), static=st.sampled_from([None, None, "q8", "fp"]))
def test_checkpoints(tmp_path_factory, bases, mutation, static):
    path = tmp_path_factory.mktemp("checkpoint") / "fuzzed.pt"
    _write_checkpoint(path, bases, mutation)
    try:
        _use(path, static)
    except DfsSimError as error:
        assert str(path) in str(error) and "\n" not in str(error), str(error)
        CASES["error"] += 1
        return
    CASES["valid"] += 1


@fuzz(40)
@given(mutation=_checkpoint_mutations(), static=st.sampled_from([None, "q8"]))
def test_checkpoints_through_the_cli(tmp_path_factory, bases, mutation, static, capsys):
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "fuzzed.pt"
    _write_checkpoint(path, bases, mutation)
    try:
        _use(path, static)
    except DfsSimError:
        pass
    else:
        CASES["valid"] += 1
        return  # a checkpoint that opens would be evaluated: test_export covers that
    out = folder / "trace.parquet"
    capsys.readouterr()
    assert export_main([str(path), "--out", str(out), *(["--static-option", static] if static else [])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fuzzed.pt" in err and "Traceback" not in err, err
    assert not out.exists()
    CASES["error"] += 1


def test_the_base_checkpoints_are_valid(bases, tmp_path):
    for name, (raw, _) in bases.items():
        path = tmp_path / f"{name}.pt"
        path.write_bytes(raw)
        _use(path, "q8")
        if name not in ("backbone", "r14"):
            _use(path, None)
