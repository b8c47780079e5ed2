"""Bad input to ``python -m dfs_sim.train`` and ``python -m dfs_sim.export``: one line on stderr naming the option or
file, exit code 2, and no output folder or file written. Also the config rules behind them (device, stages, milestones,
default output folder)."""

import dataclasses
from pathlib import Path

import pytest
import torch

from dfs_sim.errors import ConfigError
from dfs_sim.model import config as config_module, device as device_module
from dfs_sim.model.checkpoint import CheckpointError, load_backbone_into, load_checkpoint, plain, save_checkpoint
from dfs_sim.model.config import TrainConfig, config_from_dict, default_out_dir, load_train_config, scaled_milestones
from dfs_sim.model.data import num_classes_of
from dfs_sim.model.device import resolve_device
from dfs_sim.model.export import main as export_main, model_from_checkpoint
from dfs_sim.model.registry import create_model
from dfs_sim.model.training import main as train_main

ROOT = Path(__file__).resolve().parent.parent
TINY = [
    "--dataset",
    "digits",
    "--batch-size",
    "8",
    "--set",
    "backbone.iterations=2",
    "--set",
    "gate.iterations=1",
    "--set",
    "joint.iterations=1",
    "--no-progress",
]


def make_checkpoint(path, model_name="dfs_resnet8", stage="joint", **config_changes) -> Path:
    """A checkpoint as training writes it, of an untrained model (cheap: no training)."""
    config = TrainConfig(
        **{
            "model": model_name,
            "dataset": "digits",
            "out_dir": str(Path(path).parent),
            "device": "cpu",
            **config_changes,
        }
    )
    classes = num_classes_of(config.dataset)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create_model(model_name, num_classes=classes)
    return save_checkpoint(
        path,
        model_name=model_name,
        num_classes=classes,
        model=model.state_dict(),
        stage=stage,
        iteration=0,
        config=plain(config),
        seed=0,
        metrics={},
    )


def fails(main, argv, capsys, *names: str, absent: Path) -> str:
    """Run ``main(argv)``: exit code 2, exactly one line on stderr containing every one of ``names``, no traceback,
    nothing on stdout, and ``absent`` not created."""
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    for name in names:
        assert name in err, (name, err)
    assert not absent.exists(), f"{absent} was written"
    return err


# --- 1. devices -----------------------------------------------------------------------------------------------------
def _unavailable_cuda() -> str:
    """A CUDA device this machine cannot give."""
    return "cuda" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}"


@pytest.mark.parametrize("name", ["gpu", "CUDA", "cuda:", "cuda:x", "cuda:-1", "mps0", "", "unavailable"])
def test_train_refuses_a_device_it_cannot_use_before_loading_data(tmp_path, capsys, name):
    name = _unavailable_cuda() if name == "unavailable" else name
    out = tmp_path / "run"
    fails(
        train_main, ["--model", "dfs_resnet8", *TINY, "--device", name, "--out-dir", out], capsys, "device", absent=out
    )


def test_train_refuses_an_output_folder_inside_a_file_before_loading_data(tmp_path, capsys, monkeypatch):
    import dfs_sim.model.training as training

    def no_data(*args, **kwargs):
        raise AssertionError("data loaded before the output folder was checked")

    monkeypatch.setattr(training, "load_split", no_data)
    blocker = tmp_path / "results.txt"
    blocker.write_text("keep me")
    out = blocker / "run"
    fails(train_main, ["--model", "dfs_resnet8", *TINY, "--out-dir", out], capsys, "out_dir", "results.txt", absent=out)
    assert blocker.read_text() == "keep me"


@pytest.mark.parametrize("name", ["gpu", "unavailable", "cuda:99"])
def test_export_refuses_a_device_it_cannot_use(tmp_path, capsys, name):
    name = _unavailable_cuda() if name == "unavailable" else name
    checkpoint = make_checkpoint(tmp_path / "joint.pt")
    out = tmp_path / "trace.parquet"
    fails(export_main, [checkpoint, "--out", out, "--device", name], capsys, "--device", absent=out)


def test_resolve_device_names_the_source(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match=r"^--device: unknown device 'gpu'; valid: auto, cpu, cuda or cuda:N$"):
        resolve_device("gpu")
    with pytest.raises(ConfigError, match=r"^device: expected a device name"):
        resolve_device(3, "device")
    # no CUDA in this torch build, or none visible
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: False)
    with pytest.raises(ConfigError, match=r"^device: 'cuda' needs CUDA, but this torch build has none"):
        resolve_device("cuda", "device")
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="none is visible"):
        resolve_device("cuda:0")
    # two GPUs visible
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ConfigError, match=r"^--device: 'cuda:2' does not exist: 2 GPUs visible \(cuda:0\.\.cuda:1\)$"):
        resolve_device("cuda:2")
    assert device_module.check_device_name("cuda:12") == 12


# --- 2. a backbone of another depth ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def resnet74_backbone(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("r74") / "backbone.pt", "dfs_resnet74", stage="backbone")


def test_a_backbone_of_another_depth_is_one_line(resnet74_backbone):
    model = create_model("dfs_resnet38")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    missing, unexpected = model.load_backbone(load_checkpoint(resnet74_backbone)["model"])
    assert missing and unexpected  # returned, not raised: torch's size-mismatch error is never reached
    assert any("(shape [16, 16, 3, 3], model [32, 16, 3, 3])" in key for key in unexpected)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing half-loaded
    with pytest.raises(CheckpointError) as error:
        load_backbone_into(model, load_checkpoint(resnet74_backbone), resnet74_backbone, "dfs_resnet38")
    assert str(error.value) == (
        f"{resnet74_backbone}: backbone is a ResNet-74 (dfs_resnet74, depth 74), the model is "
        "dfs_resnet38 (depth 38); give a depth-38 checkpoint"
    )


def test_train_init_from_a_backbone_of_another_depth(tmp_path, resnet74_backbone, capsys):
    out = tmp_path / "run"
    err = fails(
        train_main,
        [
            "--model",
            "dfs_resnet38",
            *TINY,
            "--device",
            "cpu",
            "--stages",
            "gate,joint",
            "--init-from",
            resnet74_backbone,
            "--out-dir",
            out,
        ],
        capsys,
        str(resnet74_backbone),
        absent=out,
    )
    assert "74" in err or "does not fit" in err


def test_export_weights_that_do_not_fit_are_one_line(tmp_path, capsys):
    checkpoint = make_checkpoint(tmp_path / "joint.pt")
    record = load_checkpoint(checkpoint)
    del record["model"]["fc.weight"]
    record["model"]["blocks.0.conv1.weight"] = torch.zeros(3, 3)
    torch.save(record, tmp_path / "damaged.pt")
    with pytest.raises(CheckpointError) as error:
        model_from_checkpoint(record, source=tmp_path / "damaged.pt")
    message = str(error.value)
    assert "\n" not in message and "weights do not fit dfs_resnet8" in message and "fc.weight" in message
    assert "blocks.0.conv1.weight (shape [3, 3], model [32, 16, 3, 3])" in message  # ResNet-8: group 2's first
    out = tmp_path / "trace.parquet"
    fails(export_main, [tmp_path / "damaged.pt", "--out", out], capsys, "damaged.pt", "do not fit", absent=out)
    # a backbone of another depth as a static baseline, and a record renamed to another depth
    r14 = make_checkpoint(tmp_path / "r14.pt", "dfs_resnet14", stage="backbone")
    record = load_checkpoint(r14)
    record["model_name"] = "dfs_resnet8"
    torch.save(record, tmp_path / "renamed.pt")
    fails(
        export_main,
        [tmp_path / "renamed.pt", "--out", out, "--static-option", "q8"],
        capsys,
        "renamed.pt",
        "static_resnet8",
        absent=out,
    )


# --- 3. gate / joint without a backbone -----------------------------------------------------------------------------
@pytest.mark.parametrize("stages", ["joint", "gate", "gate,joint"])
def test_gate_and_joint_need_a_backbone(tmp_path, capsys, stages):
    out = tmp_path / "run"
    err = fails(
        train_main,
        ["--model", "dfs_resnet8", *TINY, "--stages", stages, "--out-dir", out],
        capsys,
        "stages",
        "init_from",
        absent=out,
    )
    assert "backbone" in err
    with pytest.raises(ConfigError, match="start from a trained backbone"):
        config_from_dict({"stages": stages.split(",")})
    assert config_from_dict({"stages": stages.split(","), "init_from": "backbone.pt"}).init_from == "backbone.pt"
    assert config_from_dict({"stages": ["backbone", *stages.split(",")]}).init_from is None


# --- 4. a gate-stage checkpoint -------------------------------------------------------------------------------------
def test_export_refuses_a_gate_stage_checkpoint(tmp_path, capsys):
    checkpoint = make_checkpoint(tmp_path / "gate.pt", stage="gate")
    out = tmp_path / "trace.parquet"
    err = fails(export_main, [checkpoint, "--out", out], capsys, "gate.pt", "gate-stage", absent=out)
    assert "joint" in err and "--static-option" in err
    for stage in ("gate", "joint", "backbone"):  # any checkpoint's backbone can still be a static baseline
        record = load_checkpoint(make_checkpoint(tmp_path / f"{stage}.pt", stage=stage))
        assert model_from_checkpoint(record, static_option=("q8",))[1] == "static"
    assert model_from_checkpoint(load_checkpoint(tmp_path / "joint.pt"))[1] == "dfs"


# --- 5. milestones follow the iterations ----------------------------------------------------------------------------
def test_iterations_without_milestones_scale_the_default_milestones(tmp_path):
    config = config_from_dict({"joint": {"iterations": 300}})
    assert config.joint.milestones == (150, 225) and config.joint.lr_at(299) == pytest.approx(0.0001)
    assert config.backbone.milestones == (32000, 48000)  # not given: the reference schedule
    assert config_from_dict({"backbone": {"iterations": 3}}).backbone.milestones == (2,)  # 1.5 and 2.25 both → 2
    assert config_from_dict({"joint": {"iterations": 2}}).joint.milestones == (1,)  # 2 is the end: dropped
    assert config_from_dict({"joint": {"iterations": 1}}).joint.milestones == ()
    assert config_from_dict({"joint": {"iterations": 0}}).joint.milestones == ()
    assert config_from_dict({"gate": {"iterations": 500}}).gate.milestones == ()
    assert config_from_dict({"joint": {"iterations": 300, "milestones": [100]}}).joint.milestones == (100,)
    assert scaled_milestones(TrainConfig().joint, 64000) == (32000, 48000)
    path = tmp_path / "c.toml"
    path.write_text("[joint]\niterations = 1000\n")
    assert load_train_config(path).joint.milestones == (500, 750)
    assert load_train_config(path, {"joint": {"iterations": 100}}).joint.milestones == (50, 75)
    example = load_train_config(ROOT / "examples" / "digits_r38.toml")
    assert example.joint.milestones == (120,) and example.backbone.milestones == (300, 420)
    assert "milestones scaled" in config_module.__doc__


@pytest.mark.parametrize("milestones", ["[300]", "[100,400]"])
def test_milestones_at_or_past_the_end_are_an_error(tmp_path, capsys, milestones):
    out = tmp_path / "run"
    fails(
        train_main,
        [
            "--model",
            "dfs_resnet8",
            *TINY,
            "--set",
            "joint.iterations=300",
            "--set",
            f"joint.milestones={milestones}",
            "--out-dir",
            out,
        ],
        capsys,
        "joint.milestones",
        "joint.iterations (300)",
        absent=out,
    )
    path = tmp_path / "c.toml"
    path.write_text(f"[backbone]\niterations = 300\nmilestones = {milestones}\n")
    with pytest.raises(ConfigError, match=r"c\.toml: backbone\.milestones"):
        load_train_config(path)


# --- 6. the default output folder -----------------------------------------------------------------------------------
def test_the_default_output_folder_depends_on_data_set_model_and_budget(tmp_path, monkeypatch, capsys):
    assert TrainConfig().out_dir is None
    r38, r74 = config_from_dict({"model": "dfs_resnet38"}), config_from_dict({"model": "dfs_resnet74"})
    assert r38.out_dir != r74.out_dir
    assert Path(r74.out_dir) == Path("runs/cifar10/dfs_resnet74_b50")
    assert Path(config_from_dict({"budget": 37.5}).out_dir) == Path("runs/cifar10/dfs_resnet38_b37.5")
    assert Path(config_from_dict({"stages": ["backbone"], "dataset": "digits"}).out_dir) == Path(
        "runs/digits/dfs_resnet38"
    )
    gate_only = config_from_dict({"stages": ["gate"], "init_from": "b.pt"})
    assert Path(gate_only.out_dir) == Path("runs/cifar10/dfs_resnet38")
    assert config_from_dict({"out_dir": "mine"}).out_dir == "mine"
    assert default_out_dir(dataclasses.replace(r38, budget=20.0)).endswith("dfs_resnet38_b20")
    # the saved config records the resolved folder
    monkeypatch.chdir(tmp_path)
    assert (
        train_main(
            [
                "--model",
                "dfs_resnet8",
                "--dataset",
                "digits",
                "--device",
                "cpu",
                "--set",
                "backbone.iterations=0",
                "--set",
                "gate.iterations=0",
                "--set",
                "joint.iterations=0",
                "--set",
                "validation_fraction=0",
                "--budget",
                "30",
                "--no-progress",
            ]
        )
        == 0
    )
    record = load_checkpoint(tmp_path / "runs" / "digits" / "dfs_resnet8_b30" / "joint.pt")
    assert Path(record["config"]["out_dir"]) == Path("runs/digits/dfs_resnet8_b30")
    assert config_from_dict(record["config"]).out_dir == record["config"]["out_dir"]  # a resume keeps it


# --- 7. a file given as the data folder -----------------------------------------------------------------------------
def test_a_file_as_data_path_says_it_is_a_file(tmp_path, capsys):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b not unpacked")
    out = tmp_path / "run"
    fails(
        train_main,
        [
            "--model",
            "dfs_resnet8",
            *TINY,
            "--device",
            "cpu",
            "--dataset",
            "cifar10",
            "--data-path",
            tmp_path / "cifar-10-python.tar.gz",
            "--out-dir",
            out,
        ],
        capsys,
        "cifar-10-python.tar.gz",
        "is a file, not a folder",
        absent=out,
    )
    checkpoint = make_checkpoint(tmp_path / "joint.pt", dataset="cifar10")
    trace = tmp_path / "trace.parquet"
    fails(
        export_main,
        [checkpoint, "--out", trace, "--data-path", tmp_path / "cifar-10-python.tar.gz"],
        capsys,
        "cifar-10-python.tar.gz",
        "is a file, not a folder",
        absent=trace,
    )


def test_other_bad_export_options_are_one_line(tmp_path, capsys):
    checkpoint = make_checkpoint(tmp_path / "joint.pt")
    out = tmp_path / "trace.parquet"
    fails(export_main, [checkpoint, "--out", out, "--batch-size", "0"], capsys, "--batch-size", absent=out)
    fails(export_main, [checkpoint, "--out", out, "--static-option", "q17"], capsys, "--static-option", absent=out)
    fails(
        export_main,
        [checkpoint, "--out", tmp_path / "missing" / "t.parquet"],
        capsys,
        "missing",
        absent=tmp_path / "missing",
    )


def test_files_that_are_not_checkpoints(tmp_path, capsys):
    out = tmp_path / "trace.parquet"
    torch.save(create_model("dfs_resnet8").state_dict(), tmp_path / "weights.pt")
    fails(export_main, [tmp_path / "weights.pt", "--out", out], capsys, "weights.pt", "bare state dict", absent=out)
    torch.save([1, 2], tmp_path / "list.pt")
    fails(export_main, [tmp_path / "list.pt", "--out", out], capsys, "list.pt", "holds a list", absent=out)
    (tmp_path / "text.pt").write_text("hello")
    fails(export_main, [tmp_path / "text.pt", "--out", out], capsys, "text.pt", "not a checkpoint", absent=out)
    run = tmp_path / "run"
    fails(
        train_main,
        [
            "--model",
            "dfs_resnet8",
            *TINY,
            "--device",
            "cpu",
            "--stages",
            "gate,joint",
            "--init-from",
            tmp_path / "weights.pt",
            "--out-dir",
            run,
        ],
        capsys,
        "weights.pt",
        absent=run,
    )


def _stopped_run(out: Path) -> Path:
    """A tiny run stopped after one iteration: ``out/last.pt`` to resume."""
    assert train_main(["--model", "dfs_resnet8", *TINY, "--out-dir", str(out), "--stop-after", "1"]) == 0
    return out


def test_resume_keeps_the_checkpoint_config_but_may_move_device_and_data(tmp_path, capsys):
    out = _stopped_run(tmp_path / "run")
    last = out / "last.pt"
    before = last.read_bytes()
    for flag, value in (("--budget", "20"), ("--out-dir", tmp_path / "elsewhere"), ("--seed", "3")):
        err = fails(
            train_main, ["--resume", last, flag, value], capsys, "--resume", flag, absent=tmp_path / "elsewhere"
        )
        assert "--device and --data-path" in err
    assert last.read_bytes() == before
    assert train_main(["--resume", str(last), "--device", "cpu", "--no-progress"]) == 0
    assert (out / "joint.pt").is_file()


@pytest.mark.parametrize("damage", ["order", "stream", "optimizer"])
def test_resume_with_a_damaged_stream_or_optimizer_state_is_one_line(tmp_path, capsys, damage):
    out = _stopped_run(tmp_path / "run")
    record = torch.load(out / "last.pt", weights_only=False)
    if damage == "order":
        record["stream"]["order"] = record["stream"]["order"][:-3]  # as if the data set had changed
    elif damage == "stream":
        del record["stream"]
    else:
        record["optimizer"] = {"state": {}, "param_groups": [{"params": [0]}]}
    torch.save(record, tmp_path / "damaged.pt")
    err = fails(
        train_main, ["--resume", tmp_path / "damaged.pt"], capsys, "damaged.pt", damage, absent=out / "joint.pt"
    )
    assert "Traceback" not in err


# --- errors that help: the flag named, did you mean, --help that lists -----------------------------------------------
def test_a_bad_flag_value_is_blamed_on_the_flag_not_the_config_file(tmp_path, capsys):
    config = ROOT / "examples" / "fashion_mnist_r38.toml"
    out = tmp_path / "run"
    base = ["--config", config, "--out-dir", out, "--device", "cpu"]
    err = fails(
        train_main,
        [*base, "--budget", "150", "--stages", "gate,joint", "--init-from", "x.pt"],
        capsys,
        "--budget",
        "0..100",
        absent=out,
    )
    assert "fashion_mnist_r38.toml" not in err
    err = fails(train_main, [*base, "--model", "dfs_resnet37"], capsys, "--model", "did you mean", absent=out)
    fails(train_main, [*base, "--set", "joint.iterations=-3"], capsys, "--set joint.iterations", ">= 0", absent=out)
    # a bad value in the file itself is still the file's
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "dfs_resnet38"\nbudgett = 5\n')
    fails(
        train_main,
        ["--config", bad, "--out-dir", out],
        capsys,
        "bad.toml",
        "budgett",
        "did you mean 'budget'",
        absent=out,
    )


def test_unknown_names_get_a_did_you_mean():
    from cost_models import load_preset
    from dfs_sim.options import parse_options

    with pytest.raises(ConfigError, match="did you mean 'bitfusion_eyeriss'"):
        load_preset("bitfusion_eyeris")
    with pytest.raises(ValueError, match="did you mean 'q8'"):
        parse_options(["skip", "q8x", "fp"])
    with pytest.raises(ConfigError, match="did you mean 'dfs_resnet38'"):
        create_model("dfs_resnet_38")


def test_help_lists_the_models_and_presets(capsys):
    from dfs_sim.replay import main as replay_main

    for main, names in (
        (train_main, ("dfs_resnet38", "skipnet_resnet74", "static_resnet38")),
        (replay_main, ("bitfusion_eyeriss", "stripes", "loom_paper")),
    ):
        with pytest.raises(SystemExit):
            main(["--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert all(name in text for name in names), names


def test_export_of_a_file_that_is_no_checkpoint_is_its_own_line(tmp_path, capsys):
    out = tmp_path / "trace.parquet"
    (tmp_path / "notes.pt").write_text("not a checkpoint at all")
    err = fails(
        export_main, [tmp_path / "notes.pt", "--out", out], capsys, "notes.pt", "python -m dfs_sim.train", absent=out
    )
    assert "weights_only" not in err and "PyTorch" not in err
