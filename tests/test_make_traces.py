"""examples/make_traces.py: what it runs for each state a run can be left in (done, trained, killed, not started)."""

import dataclasses
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def make_traces(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("make_traces", ROOT / "examples" / "make_traces.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_traces", module)  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    (tmp_path / "examples").mkdir()
    for config in ("fashion_mnist_r38.toml", "digits_r38.toml"):
        shutil.copy(ROOT / "examples" / config, tmp_path / "examples" / config)
    commands: list[list[str]] = []
    monkeypatch.setattr(module.subprocess, "run", lambda words, cwd, check: commands.append(words[1:]))
    module.commands = commands
    return module


def _example(module):
    return dataclasses.replace(
        module.EXAMPLES["fashion-mnist"],
        dfs_budgets=(3,),
        binary_budgets=(40,),
        skipnet_alphas=(0.5,),
        hardware_budgets=((12, "bitfusion_eyeriss", "energy"),),
        native_budgets=((15, "bitfusion_eyeriss", "energy"),),
        static=("q8",),
        qat=("w4a4",),
        qat_seeds=(0, 2),
        mixed=((9.1, "bitfusion_eyeriss", "energy"),),
        lowbit_budgets=(2.5,),
        lowbit_seeds={2.5: (1,)},
    )


def _write_current_trace(example, path):
    """A real trace at ``path`` made with the example's quantizer and, for a gated run, its gate push now (from a
    bundled one)."""
    from dfs_sim.traces import read_trace, write_trace

    bundled = read_trace(ROOT / "examples/traces/static_r38_q8.parquet")
    trained = {"beta": 0.01, "gate_beta": 0.0025}  # the config's gate push (examples/fashion_mnist_r38.toml)
    meta = {**bundled.meta, "quantizer": example.quantizer, "train_config": trained}
    write_trace(path, dataclasses.replace(bundled, meta=meta))


def test_every_run_state_gets_the_step_it_needs(make_traces, tmp_path):
    example = _example(make_traces)
    backbone = tmp_path / example.backbone
    backbone.parent.mkdir(parents=True)
    backbone.write_bytes(b"committed")
    assert make_traces.train_backbone(example, []) == backbone and make_traces.commands == []

    (tmp_path / example.out).mkdir(parents=True)
    done = example.trace("dfs_b3")
    _write_current_trace(example, done)
    make_traces.make_run(example, "dfs_b3", "dfs", 3, backbone, [])
    assert make_traces.commands == []  # a finished run is skipped

    killed = tmp_path / example.work_dir / "dfs_binary_b40"
    killed.mkdir(parents=True)
    (killed / "last.pt").write_bytes(b"partial")
    make_traces.make_run(example, "dfs_binary_b40", "dfs_binary", 40, backbone, [])
    resume, export = make_traces.commands
    # paths are given relative to the repository root, so recorded commands do not name this machine's folders
    assert resume[:4] == ["-m", "dfs_sim.train", "--resume", "runs/fashion-mnist_r38/dfs_binary_b40/last.pt"]
    assert export == [
        "-m",
        "dfs_sim.export",
        "runs/fashion-mnist_r38/dfs_binary_b40/joint.pt",
        "--out",
        "examples/traces/dfs_binary_r38_b40.parquet",
    ]

    # SkipNet: the supervised phase once, then reinforcement learning from it at the run's alpha
    make_traces.commands.clear()
    make_traces.make_run(example, "skipnet_a0.5", "skipnet", 0.5, backbone, [])
    supervised, reinforced, export = make_traces.commands
    assert supervised[supervised.index("--stages") + 1] == "sp"
    assert supervised[supervised.index("--init-from") + 1] == example.backbone
    assert supervised[-2:] == ["--out-dir", "runs/fashion-mnist_r38/skipnet_sp"]
    assert (
        reinforced[reinforced.index("--stages") + 1] == "hrl" and reinforced[reinforced.index("--alpha") + 1] == "0.5"
    )
    assert reinforced[reinforced.index("--init-from") + 1] == "runs/fashion-mnist_r38/skipnet_sp/sp.pt"
    assert export[2:] == [
        "runs/fashion-mnist_r38/skipnet_a0.5/hrl.pt",
        "--out",
        "examples/traces/skipnet_r38_a0.5.parquet",
    ]
    make_traces.commands.clear()
    (tmp_path / "runs/fashion-mnist_r38/skipnet_sp").mkdir(parents=True)
    (tmp_path / "runs/fashion-mnist_r38/skipnet_sp/sp.pt").write_bytes(b"trained")
    make_traces.make_run(example, "skipnet_a0.5", "skipnet", 0.5, backbone, [])
    assert [command[command.index("--stages") + 1] for command in make_traces.commands[:-1]] == ["hrl"]

    make_traces.commands.clear()
    done.unlink()
    make_traces.make_run(example, "dfs_b3", "dfs", 3, backbone, ["--no-progress"])
    train, export = make_traces.commands
    assert train[train.index("--init-from") + 1] == example.backbone and "--resume" not in train
    assert train[train.index("--budget") + 1] == "3" and train[train.index("--beta") + 1] == "0.01"  # its own β
    assert train[train.index("keep=best") - 1 : train.index("keep=best") + 1] == ["--set", "keep=best"]
    assert train[-1] == "--no-progress" and export[-1].endswith("dfs_r38_b3.parquet")

    make_traces.commands.clear()
    name = make_traces.hardware_run_name(12, "bitfusion_eyeriss", "energy")
    assert name == "dfs_b12-bitfusion-eyeriss-energy"
    make_traces.make_run(example, name, "dfs", 12, backbone, [])
    train, export = make_traces.commands
    assert train[train.index("--budget") + 1] == "12" and train[train.index("--beta") + 1] == "0.01"
    assert 'cost.preset="bitfusion_eyeriss"' in train and 'cost.metric="energy"' in train
    assert export[-1] == "examples/traces/dfs_r38_b12-bitfusion-eyeriss-energy.parquet"

    make_traces.commands.clear()
    make_traces.make_run(example, "dfs_b15-bitfusion-eyeriss-energy-native", "dfs", 15, backbone, [])
    train, export = make_traces.commands
    assert 'options=["skip", "w2a2", "w4a4", "w4a8", "w8a4", "w8a8", "fp"]' in train
    assert 'cost.preset="bitfusion_eyeriss"' in train
    assert export[-1] == "examples/traces/dfs_r38_b15-bitfusion-eyeriss-energy-native.parquet"

    make_traces.commands.clear()
    make_traces.make_run(example, "static_q8", "static", None, backbone, [])
    (static,) = make_traces.commands
    assert static == [
        "-m",
        "dfs_sim.export",
        example.backbone,
        "--static-option",
        "q8",
        "--quantizer",
        example.quantizer,
        "--out",
        "examples/traces/static_r38_q8.parquet",
    ]

    # quantization-aware: the backbone fine-tuned at one width, seed from the name; checkpoints under the quantizer
    make_traces.commands.clear()
    make_traces.make_run(example, "qat_w4a4-s2", "qat", None, backbone, [])
    train, export = make_traces.commands
    assert train[train.index("--stages") + 1] == "qat" and train[train.index("--seed") + 1] == "2"
    assert 'static_options=["w4a4"]' in train and train[train.index("--model") + 1] == "static_resnet38"
    assert train[-1] == f"runs/fashion-mnist_r38/{example.quantizer}/qat_w4a4-s2"
    assert export[2:] == [
        f"runs/fashion-mnist_r38/{example.quantizer}/qat_w4a4-s2/qat.pt",
        "--out",
        "examples/traces/qat_r38_w4a4-s2.parquet",
    ]

    # low-bit DFS: its option set, its own β, seed 0 without --seed
    make_traces.commands.clear()
    make_traces.make_run(example, "dfs_b2.5-lowbit", "dfs", 2.5, backbone, [])
    train, _ = make_traces.commands
    assert 'options=["skip", "q3", "q4", "q5", "q6", "q8", "fp"]' in train and "--seed" not in train
    assert train[train.index("--beta") + 1] == "0.01"

    # mixed precision: the search command with the sensitivity cache beside the backbone
    make_traces.commands.clear()
    make_traces.make_run(example, "mixed_bitfusion-eyeriss-energy-9.1", "mixed", 9.1, backbone, [])
    (mixed,) = make_traces.commands
    assert mixed[:3] == ["-m", "dfs_sim.mixed", example.backbone]
    assert mixed[mixed.index("--target") + 1] == "9.1" and mixed[mixed.index("--preset") + 1] == "bitfusion_eyeriss"
    assert mixed[-1] == "examples/traces/mixed_r38_bitfusion-eyeriss-energy-9.1.parquet"


def test_a_trace_made_with_another_quantizer_is_made_again(make_traces, tmp_path):
    from dfs_sim.traces import read_trace, write_trace

    example = _example(make_traces)
    (tmp_path / example.out).mkdir(parents=True)
    legacy = read_trace(ROOT / "examples/traces/static_r38_q8.parquet")  # bundled before the quantizer choice
    for name in ("static_q8", "skipnet_a1"):
        run = dataclasses.replace(legacy, meta={k: v for k, v in legacy.meta.items() if k != "quantizer"})
        write_trace(example.trace(name), run)
    assert not example.current("static_q8", "static")  # quantizes: made with the authors' quantizer, so stale
    assert example.current("skipnet_a1", "skipnet")  # quantizes nothing: current under any quantizer
    assert example.work_folder("skipnet_a1", "skipnet") == tmp_path / example.work_dir / "skipnet_a1"


def test_an_uncommitted_backbone_is_trained_or_resumed_then_slimmed(make_traces, tmp_path, monkeypatch):
    import torch

    example = _example(make_traces)
    folder = tmp_path / example.work_dir / "backbone"
    folder.mkdir(parents=True)
    (folder / "last.pt").write_bytes(b"partial")

    def finish(words, cwd, check):
        make_traces.commands.append(words[1:])
        torch.save(
            {"model": {"w": torch.ones(2)}, "optimizer": {"state": {}}, "stream": {}, "best": None},
            folder / "backbone.pt",
        )

    monkeypatch.setattr(make_traces.subprocess, "run", finish)
    committed = make_traces.train_backbone(example, [])
    assert make_traces.commands == [["-m", "dfs_sim.train", "--resume", "runs/fashion-mnist_r38/backbone/last.pt"]]
    assert sorted(torch.load(committed, weights_only=True)) == ["model"]


def test_the_command_line(make_traces, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["make_traces.py", "--only", "dfs_b7"])
    assert make_traces.main() == 2
    assert "unknown run(s) dfs_b7" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["make_traces.py", "--list"])
    assert make_traces.main() == 0
    listed = capsys.readouterr().out.splitlines()
    example = make_traces.EXAMPLES["fashion-mnist"]
    runs = example.runs()
    exports = len(example.dynamic) * len(make_traces.DYNAMIC_FORMS)  # the effective-precision exports
    assert listed[0].startswith("backbone: to train") and len(listed) == 1 + len(runs) + exports
    assert len(runs) >= 6 + 4 + 5  # DFS budgets, SkipNet alphas, static options
    assert "skipnet_a1: to do (examples/traces/skipnet_r38_a1.parquet)" in listed
    assert "dfs_b3: to do (examples/traces/dfs_r38_b3.parquet)" in listed


def test_a_trace_trained_without_its_run_settings_is_made_again_with_them(make_traces, tmp_path):
    from dfs_sim.traces import read_trace, write_trace

    example = dataclasses.replace(_example(make_traces), run_settings={"dfs_b2.5-lowbit": ("keep_within=0.5",)})
    (tmp_path / example.out).mkdir(parents=True)
    bundled = read_trace(ROOT / "examples/traces/static_r38_q8.parquet")
    for name, keep_within in (("dfs_b2.5-lowbit", None), ("dfs_b2.5-lowbit-s1", 0.5)):
        config = {"beta": 0.01, "gate_beta": 0.0025, "keep_within": keep_within}
        config = {k: v for k, v in config.items() if v is not None}  # None: a trace from before the setting existed
        meta = {**bundled.meta, "quantizer": example.quantizer, "train_config": config}
        write_trace(example.trace(name), dataclasses.replace(bundled, meta=meta))
    assert not example.current("dfs_b2.5-lowbit", "dfs")  # trained at the default 2 points
    assert example.current("dfs_b2.5-lowbit-s1", "dfs")  # a seed of the same run shares its settings
    make_traces.make_run(example, "dfs_b2.5-lowbit", "dfs", 2.5, tmp_path / example.backbone, [])
    trained = make_traces.commands[0]
    assert trained[trained.index("keep_within=0.5") - 1] == "--set"


def test_effective_precision_exports_follow_their_runs_in_every_measurement(make_traces, tmp_path):
    example = dataclasses.replace(_example(make_traces), dynamic=("static_q8", "dfs_b3"))
    (tmp_path / example.out).mkdir(parents=True)
    backbone = tmp_path / example.backbone
    _write_current_trace(example, example.trace("static_q8"))
    make_traces.make_dynamic_traces(example, "dfs_b3", "dfs", backbone)  # its own trace is not made yet
    assert make_traces.commands == []
    make_traces.make_dynamic_traces(example, "static_q8", "static", backbone)
    outputs = [command[command.index("--out") + 1] for command in make_traces.commands]
    assert outputs == [
        "examples/traces_dynamic/static_r38_q8.parquet",
        "examples/traces_dynamic/static_r38_q8-windows.parquet",
        "examples/traces_dynamic/static_r38_q8-steps.parquet",
        "examples/traces_dynamic/static_r38_q8-loom-steps.parquet",
    ]
    steps, loom_steps = make_traces.commands[2:]
    assert steps[steps.index("--precision-measure") + 1] == "step" and "--static-option" in steps
    assert loom_steps[loom_steps.index("--precision-preset") + 1] == "loom_dynamic"
    forms = make_traces.DYNAMIC_FORMS
    bundled = ROOT / "examples/traces_dynamic/static_r38_q8-steps.parquet"  # per step, stripes_dynamic's geometry
    assert make_traces._dynamic_current(example, "static_q8", bundled, forms["-steps"])
    assert not make_traces._dynamic_current(example, "static_q8", bundled, forms[""])  # another measurement
    assert not make_traces._dynamic_current(example, "static_q8", bundled, forms["-loom-steps"])  # another geometry
    # made from another checkpoint than the run's own trace (the run retrained since): made again
    from dfs_sim.traces import read_trace, write_trace

    own = read_trace(example.trace("static_q8"))
    write_trace(example.trace("static_q8"), dataclasses.replace(own, meta={**own.meta, "checkpoint_sha256": "0" * 16}))
    assert not make_traces._dynamic_current(example, "static_q8", bundled, forms["-steps"])


def test_a_gated_run_trained_with_another_gate_push_is_retrained_from_scratch(make_traces, tmp_path):
    """A trace from before ``gate_beta`` (its gate stage pushed with the run's β) is stale where β differs from the
    config's gate push; its checkpoints are set aside rather than resumed or exported again."""
    import torch

    from dfs_sim.model.checkpoint import CHECKPOINT_FORMAT
    from dfs_sim.traces import read_trace, write_trace

    example = _example(make_traces)
    (tmp_path / example.out).mkdir(parents=True)
    bundled = read_trace(ROOT / "examples/traces/static_r38_q8.parquet")
    trained_before = {  # run: the config its trace was trained with
        "dfs_b3": {"beta": 0.01},  # its β 0.01 also pushed its gate stage: stale
        "dfs_b2.5-lowbit-s1": {"beta": 0.01, "gate_beta": 0.0025},  # current
        "dfs_binary_b40": {"beta": 0.00125},  # the binary ablation has a gate stage too: stale
    }
    for name, config in trained_before.items():
        meta = {**bundled.meta, "quantizer": example.quantizer, "train_config": config}
        write_trace(example.trace(name), dataclasses.replace(bundled, meta=meta))
    assert example.gate_beta("dfs_b3", "dfs") == 0.0025 and example.beta("dfs_b3", "dfs") == 0.01
    assert not example.current("dfs_b3", "dfs")
    assert example.current("dfs_b2.5-lowbit-s1", "dfs")
    assert not example.current("dfs_binary_b40", "dfs_binary")

    folder = example.work_folder("dfs_b3", "dfs")
    folder.mkdir(parents=True)
    record = {"format": CHECKPOINT_FORMAT, "model_name": "dfs_resnet38", "num_classes": 10, "stage": "joint"}
    record |= {"model": {"w": torch.zeros(1)}, "iteration": 300, "seed": 0, "config": {"beta": 0.01}}
    torch.save(record, folder / "joint.pt")  # (save_checkpoint asks git, which the fixture's subprocess stub cannot)
    make_traces.make_run(example, "dfs_b3", "dfs", 3, tmp_path / example.backbone, [])
    assert (folder.with_name("dfs_b3.superseded") / "joint.pt").is_file()  # kept, out of the way
    trained = make_traces.commands[0]
    assert "--resume" not in trained and trained[trained.index("--out-dir") + 1].endswith("dfs_b3")
