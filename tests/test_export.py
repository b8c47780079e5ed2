"""Export: a checkpoint evaluated on a split becomes a trace that read_trace accepts, with the same accuracy."""

import dataclasses

import numpy as np
import pytest

from dfs_sim.errors import DfsSimError
from dfs_sim.layer_table import cifar_resnet_layers
from dfs_sim.model.checkpoint import load_checkpoint
from dfs_sim.model.config import StageConfig, TrainConfig
from dfs_sim.model.data import load_split
from dfs_sim.model.export import export, main, model_from_checkpoint
from dfs_sim.model.infer import evaluate
from dfs_sim.model.training import train
from dfs_sim.options import DFS_OPTIONS, SKIPNET_OPTIONS
from dfs_sim.traces import read_trace


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    config = TrainConfig(
        model="dfs_resnet8",
        dataset="digits",
        out_dir=str(folder / "dfs"),
        batch_size=16,
        augment="none",
        beta=0.05,
        budget=40.0,
        device="cpu",
        seed=7,
        backbone=StageConfig(10, 0.05),
        gate=StageConfig(3, 0.01),
        joint=StageConfig(5, 0.05),
    )
    dfs = train(config, progress=False).checkpoints
    skip = train(
        dataclasses.replace(
            config,
            model="dfs_binary_resnet8",
            out_dir=str(folder / "skip"),
            stages=("gate", "joint"),
            init_from=str(dfs["backbone"]),
        ),
        progress=False,
    ).checkpoints
    return folder, dfs, skip


def test_export_writes_a_valid_trace_with_the_evaluation_accuracy(checkpoints):
    folder, dfs, _ = checkpoints
    result = export(dfs["joint"], folder / "dfs_r8_b40.parquet")
    run = read_trace(result.path)
    assert run.method == "dfs" and run.budget == 40.0 and run.meta["seed"] == 7
    assert run.meta["model"] == {
        "arch": "cifar_resnet",
        "depth": 8,
        "dataset": "digits",
        "num_classes": 10,
        "input_size": [3, 32, 32],
    }
    assert run.num_inputs == 360 and run.codes.shape == (360, 2)
    assert run.accuracy == pytest.approx(result.evaluation.accuracy)
    record = load_checkpoint(dfs["joint"])
    model, _ = model_from_checkpoint(record)
    again = evaluate(model, load_split("digits", "test"))
    assert run.accuracy == pytest.approx(again.accuracy)
    assert np.array_equal(run.codes, again.codes) and np.array_equal(run.input_id, again.input_id)
    assert run.meta["layers"] == cifar_resnet_layers(8, options=DFS_OPTIONS).to_records()


def test_export_binary_dfs_and_static(checkpoints):
    folder, dfs, skip = checkpoints
    run = read_trace(export(skip["joint"], folder / "dfs_binary.parquet").path)
    assert run.method == "dfs_binary" and len(run.meta["options"]) == len(SKIPNET_OPTIONS)
    assert run.meta["layers"] == cifar_resnet_layers(8, options=SKIPNET_OPTIONS).to_records()
    for option, name in (("q8", "q8"), ("fp", "fp"), ("3", "q12"), ("w4a6", "w4a6"), ("q3", "q3")):
        static = read_trace(export(dfs["backbone"], folder / f"static_{option}.parquet", static_option=option).path)
        assert static.method == "static" and static.budget is None and static.meta["static_option"] == name
        # the option list holds the static width and full precision (the always-run layers)
        assert [o.name for o in static.options] == ([name, "fp"] if name != "fp" else ["fp"])
        assert (static.codes == 0).all() and static.meta["static_training"] == "ptq"
    mixed = read_trace(export(dfs["backbone"], folder / "mixed.parquet", static_option="q4,q8").path)
    assert [o.name for o in mixed.options] == ["q4", "q8", "fp"] and mixed.meta["static_options"] == ["q4", "q8"]
    assert (mixed.codes == [0, 1]).all() and mixed.meta["static_option"] is None  # per block, not per input
    q16 = export(dfs["backbone"], folder / "q16.parquet", static_option="q16").evaluation
    fp = export(dfs["backbone"], folder / "fp.parquet", static_option="fp").evaluation
    assert np.mean(q16.pred == fp.pred) > 0.95  # 16-bit calibrated quantization barely changes a backbone


def test_export_with_effective_precisions(checkpoints, tmp_path):
    """--effective-precision adds the needed bits (format 3) without changing a decision; groups that span the 16
    windows of a Stripes tile need at least as many bits on average as groups at one position."""
    _, dfs, _ = checkpoints
    plain = read_trace(export(dfs["joint"], tmp_path / "plain.parquet").path)
    runs = {}
    for positions in (1, 16):
        out = tmp_path / f"measured_{positions}.parquet"
        assert (
            main(
                [str(dfs["joint"]), "--out", str(out), "--effective-precision", "--precision-positions", str(positions)]
            )
            == 0
        )
        runs[positions] = read_trace(out)
        assert np.array_equal(runs[positions].codes, plain.codes) and np.array_equal(runs[positions].pred, plain.pred)
        assert runs[positions].meta["effective_precision"]["group_positions"] == positions
    one, sixteen = runs[1].precision.astype(float), runs[16].precision.astype(float)
    assert plain.precision is None and ((one > 0) == (sixteen > 0)).all() and (one > 0).any()
    assert sixteen.sum() >= one.sum()
    with pytest.raises(DfsSimError, match="precision-positions"):
        export(dfs["joint"], tmp_path / "x.parquet", effective_precision=True, precision_positions=4)


def test_export_errors(checkpoints, tmp_path, capsys):
    _, dfs, _ = checkpoints
    with pytest.raises(DfsSimError, match="static option"):
        export(dfs["backbone"], tmp_path / "x.parquet")
    for bad in ("q17", "q9x", "skip", "q4,q4,q4", "7"):  # too wide, not a name, not static, wrong count, no code
        with pytest.raises(DfsSimError, match="--static-option"):
            export(dfs["backbone"], tmp_path / "x.parquet", static_option=bad)
    with pytest.raises(DfsSimError, match="--quantizer"):
        export(dfs["joint"], tmp_path / "x.parquet", quantizer="standard")
    assert main([str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.parquet")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.pt" in err
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert main([str(tmp_path / "junk.pt"), "--out", str(tmp_path / "x.parquet")]) == 2
    assert main([str(dfs["joint"]), "--out", str(tmp_path / "x.parquet")]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_fashion_mnist_trains_and_exports_at_its_own_geometry(tmp_path):
    from tests.test_data import _write_fashion

    data = _write_fashion(tmp_path / "fm", n_train=40, n_test=10, compress=True)
    config = TrainConfig(
        model="dfs_resnet8",
        dataset="fashion-mnist",
        data_path=str(data),
        out_dir=str(tmp_path / "r"),
        batch_size=8,
        budget=40.0,
        device="cpu",
        validation_fraction=0.25,
        eval_every=2,
        backbone=StageConfig(4, 0.05),
        gate=StageConfig(2, 0.01),
        joint=StageConfig(3, 0.05),
    )
    result = train(config, progress=False)
    assert result.model.stem.in_channels == 1
    layers = cifar_resnet_layers(8, options=DFS_OPTIONS, input_size=28, in_channels=1)
    run = read_trace(export(result.checkpoints["joint"], tmp_path / "dfs.parquet").path)
    assert run.meta["model"]["dataset"] == "fashion-mnist" and run.meta["model"]["input_size"] == [1, 28, 28]
    assert run.meta["layers"] == layers.to_records() and run.num_inputs == 10
    assert run.meta["layers"][0]["in_ch"] == 1 and run.meta["layers"][0]["in_h"] == 28
    static = read_trace(export(result.checkpoints["backbone"], tmp_path / "q8.parquet", static_option="q8").path)
    assert static.label.tolist() == list(range(10)) and static.meta["model"]["input_size"] == [1, 28, 28]
