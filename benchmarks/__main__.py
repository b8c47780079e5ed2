"""``python -m benchmarks [--quick]``: replay (kernel and job), trace reading, cost tables, the CLI, the model, sweeps.

Prints one section per measurement and ends with a single ``summary:`` line. Each fast path is compared with its
reference in the same process, except the whole replay job, which runs against a plain numpy script in processes of
their own; correctness of every fast path against its reference lives in the test suite.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from dfs_sim.traces import TraceRun

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "traces"
E2E_SOURCE = EXAMPLE / "dfs_r38_b8.parquet"  # a DFS run of the bundled ResNet-38, resampled to any size


def best_of(function, repeat: int = 3) -> float:
    """The fastest of ``repeat`` calls, in seconds (timeit: garbage collection off while timing)."""
    return min(timeit.repeat(function, number=1, repeat=repeat))


def bench_replay(inputs: int, blocks: int = 35) -> dict:
    """Decision·preset sums per second of the pair kernel (on range-checked codes, and checking them itself)
    against the read bound, numpy and pandas."""
    import numba
    import pandas as pd

    from analysis.replay_kernel import replay_presets, replay_presets_reference
    from cost_models import build_cost_table, list_presets
    from dfs_sim.layer_table import cifar_resnet_layers

    layers = cifar_resnet_layers(6 * (blocks + 1) // 3 + 2)  # ResNet-74 has 35 gated blocks
    presets = list_presets()
    tables = [build_cost_table(layers, preset) for preset in presets]
    energy = np.stack([table.block[:, :, 1:4].sum(axis=2) for table in tables], axis=2)  # (B, K, P)
    fixed = np.array([table.fixed[1:4].sum() for table in tables])
    rng = np.random.default_rng(0)
    codes = rng.integers(0, energy.shape[1], size=(inputs, layers.num_blocks), dtype=np.uint8)
    sums = codes.size * len(presets)

    out = replay_presets(codes[:1000], energy, fixed).base
    out = np.empty((inputs, out.shape[1]))
    # The pipeline replays a TraceRun's codes, range-checked once when the trace was read; a caller with raw codes
    # gets the check (one more pass over the codes) by default. Shared VMs are noisy: best of 7, interleaved.
    kernel_s, checked_s = float("inf"), float("inf")
    for _ in range(7):
        kernel_s = min(kernel_s, best_of(lambda: replay_presets(codes, energy, fixed, out=out, check_codes=False), 1))
        checked_s = min(checked_s, best_of(lambda: replay_presets(codes, energy, fixed, out=out), 1))

    @numba.njit(parallel=True, cache=False)
    def stream(flat):
        total = 0
        for index in numba.prange(flat.shape[0]):
            total += flat[index]
        return total

    flat = codes.reshape(-1)
    stream(flat[:10])
    bound_s = best_of(lambda: stream(flat))
    sample = min(inputs, 1_000_000)
    numpy_s = best_of(lambda: replay_presets_reference(codes[:sample], energy, fixed), repeat=2) * inputs / sample
    small = min(inputs, 20_000)
    long = pd.DataFrame(
        {
            "input": np.repeat(np.arange(small), layers.num_blocks),
            "block": np.tile(np.arange(layers.num_blocks), small),
            "option": codes[:small].reshape(-1),
        }
    )
    table = pd.DataFrame(
        [
            (block, option, preset, energy[block, option, index])
            for block in range(energy.shape[0])
            for option in range(energy.shape[1])
            for index, preset in enumerate(presets)
        ],
        columns=["block", "option", "preset", "energy"],
    )
    pandas_s = (
        best_of(
            lambda: long.merge(table, on=["block", "option"]).groupby(["input", "preset"])["energy"].sum(), repeat=1
        )
        * inputs
        / small
    )
    return {
        "inputs": inputs,
        "blocks": layers.num_blocks,
        "presets": len(presets),
        "kernel_s": kernel_s,
        "replay_gsums": sums / kernel_s / 1e9,
        "replay_checked_gsums": sums / checked_s / 1e9,
        "replay_vs_bound": bound_s / kernel_s,
        "replay_vs_numpy": numpy_s / kernel_s,
        "replay_vs_pandas": pandas_s / kernel_s,
        "bound_gsums": sums / bound_s / 1e9,
    }


def bench_end_to_end(inputs: int) -> dict:
    """The whole replay job on a big ResNet-38 trace, each command in its own process: the plain numpy script
    (``benchmarks.plain_replay``), ``python -m dfs_sim.replay`` writing the compact per-input frame and, where the
    command has ``--per-input``, the default (``full``: every column) and no per-input frame. Wall seconds and peak
    resident memory (MB) of each; ``e2e_replay_vs_plain`` and ``e2e_full_vs_plain`` above 1 mean the pipeline is
    faster than the plain script. Cost tables are
    built beforehand, and ``main`` runs this after the replay section has filled Numba's cache, so that neither
    command pays a one-off build or compilation that a warm job would not."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        run = resampled_run(inputs)
        trace = write_trace_alone(run, work / "trace")
        # Every command finds the cost tables built, as a warm replay does, in this folder rather than the user's cache.
        build_every_cost_table(run, work / "tables")
        del run  # the children, not this process, should hold the big arrays from now on
        env = dict(os.environ, PYTHONPATH=str(ROOT), DFS_SIM_CACHE=str(work / "tables"))
        replay = [sys.executable, "-m", "dfs_sim.replay", str(trace.parent), "--no-plots", "--quiet"]
        per_input = replay_has_per_input(env)
        plain = measured_child([sys.executable, "-m", "benchmarks.plain_replay", str(trace), str(work / "plain")], env)
        compact = measured_child(
            [*replay, "--out", str(work / "compact"), *(["--per-input", "compact"] if per_input else [])], env
        )
        none = (
            measured_child([*replay, "--out", str(work / "none"), "--per-input", "none"], env)
            if per_input
            else {"wall_s": math.nan, "peak_mb": math.nan}
        )
        full = (
            measured_child([*replay, "--out", str(work / "full"), "--per-input", "full"], env)
            if per_input
            else {"wall_s": math.nan, "peak_mb": math.nan}
        )
    return {
        "e2e_inputs": inputs,
        "e2e_plain_s": plain["wall_s"],
        "e2e_plain_peak_mb": plain["peak_mb"],
        "e2e_replay_s": compact["wall_s"],
        "e2e_replay_peak_mb": compact["peak_mb"],
        "e2e_replay_vs_plain": plain["wall_s"] / compact["wall_s"],
        "e2e_none_s": none["wall_s"],
        "e2e_none_peak_mb": none["peak_mb"],
        "e2e_full_s": full["wall_s"],
        "e2e_full_peak_mb": full["peak_mb"],
        "e2e_full_vs_plain": plain["wall_s"] / full["wall_s"],
    }


def bench_large(inputs: int, forms: tuple[str, ...] = ("none", "full")) -> dict:
    """``python -m dfs_sim.replay --per-input FORM`` on one trace of ``inputs`` inputs (100 M, say), for each of
    ``forms`` (``none`` and the default ``full``): seconds and peak memory, which streaming keeps near the chunk's,
    the writer's queue and the kept quantile columns' (1 GiB at most) size, whatever the trace's length."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        run = resampled_run(inputs)
        trace = write_trace_alone(run, work / "trace")
        build_every_cost_table(run, work / "tables")
        del run
        env = dict(os.environ, PYTHONPATH=str(ROOT), DFS_SIM_CACHE=str(work / "tables"))
        command = [sys.executable, "-m", "dfs_sim.replay", str(trace.parent), "--no-plots", "--quiet"]
        figures: dict = {"large_inputs": inputs}
        for form in forms:
            measured = measured_child([*command, "--out", str(work / form), "--per-input", form], env)
            figures[f"large_{form}_s"], figures[f"large_{form}_peak_mb"] = measured["wall_s"], measured["peak_mb"]
    return figures


def resampled_run(inputs: int, seed: int = 0) -> TraceRun:
    """A run of ``inputs`` rows drawn with replacement from the bundled DFS run: the same decision statistics at any
    size, so that timings of different sizes compare. Input ids are 0..inputs-1; the metadata is the source's."""
    from dfs_sim.traces import TraceRun, read_trace

    source = read_trace(E2E_SOURCE)
    rows = np.random.default_rng(seed).integers(0, source.num_inputs, size=inputs)
    return TraceRun(
        meta=dict(source.meta),
        codes=source.codes[rows],
        input_id=np.arange(inputs),
        label=source.label[rows],
        pred=source.pred[rows],
        confidence=source.confidence[rows],
    )


def write_trace_alone(run: TraceRun, folder: Path) -> Path:
    """Write ``run`` as the only trace in ``folder`` (the replay command reads every trace of a folder)."""
    from dfs_sim.traces import write_trace

    return write_trace(folder / f"dfs_r38_b8_x{run.num_inputs}.parquet", run)


def build_every_cost_table(run: TraceRun, cache_dir: Path) -> None:
    """Build (and cache in ``cache_dir``) the cost table of ``run``'s layers on every shipped preset."""
    from cost_models import build_cost_table, list_presets

    for preset in list_presets():
        build_cost_table(run.layers, preset, options=run.options, cache_dir=cache_dir)


def replay_has_per_input(env: dict) -> bool:
    """Whether this checkout's replay command has ``--per-input`` (full | compact | none)."""
    command = [sys.executable, "-m", "dfs_sim.replay", "--help"]
    help_text = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return "--per-input" in help_text


def measured_child(command: list[str], env: dict) -> dict:
    """Wall seconds and peak resident memory (MB, 10^6 bytes) of ``command``, run under ``benchmarks.peak`` so that
    its peak is its own; a failing command raises with the end of its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.peak", "--", *command], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} exited with code {done.returncode}:\n{done.stderr[-2000:]}")
    measured = json.loads(done.stdout.splitlines()[-1])
    return {"wall_s": measured["wall_s"], "peak_mb": measured["max_rss_kib"] * 1024 / 1e6}


def bench_dynamic(inputs: int) -> dict:
    """Replay of one run on ``stripes_dynamic`` with effective precisions against the same run on ``stripes`` (the
    static replay), in this process: what charging each decision its measured bits adds (one more kernel pass)."""
    from analysis.streaming import replay_run
    from cost_models import build_cost_table, load_preset
    from dfs_sim.traces import PRECISION_STEPS

    run = resampled_run(inputs, seed=1)
    bits = np.array([0 if o.is_skip or o.float else o.a_bits for o in run.options])[run.codes]
    needed = np.random.default_rng(2).integers(PRECISION_STEPS, np.maximum(bits, 1) * PRECISION_STEPS + 1)
    measured = run.with_precision(np.where(bits > 0, needed, 0).astype(np.uint8))
    static, dynamic = load_preset("stripes"), load_preset("stripes_dynamic")
    tables = [build_cost_table(run.layers, preset, run.options, use_cache=False) for preset in (static, dynamic)]
    replay_run(measured, [dynamic], tables[1:])  # compile
    static_s = best_of(lambda: replay_run(run, [static], tables[:1]), repeat=2)
    dynamic_s = best_of(lambda: replay_run(measured, [dynamic], tables[1:]), repeat=2)
    return {"dynamic_inputs": inputs, "dynamic_s": dynamic_s, "dynamic_vs_static": dynamic_s / static_s}


def bench_read(inputs: int) -> dict:
    """Reading a trace (Parquet decode, validation, hash) against pyarrow's bare read of the same file."""
    import pyarrow.parquet as pq

    from dfs_sim.layer_table import cifar_resnet_layers
    from dfs_sim.options import DFS_OPTIONS
    from dfs_sim.traces import TraceRun, make_meta, read_trace, write_trace

    layers = cifar_resnet_layers(74)
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 7, size=(inputs, layers.num_blocks), dtype=np.uint8)
    meta = make_meta(
        method="dfs",
        budget=50.0,
        model={"arch": "cifar_resnet", "depth": 74, "dataset": "bench", "num_classes": 10, "input_size": [3, 32, 32]},
        options=DFS_OPTIONS,
        layers=layers,
        seed=0,
        command="benchmarks",
    )
    run = TraceRun(
        meta=meta,
        codes=codes,
        input_id=np.arange(inputs),
        label=rng.integers(0, 10, inputs),
        pred=rng.integers(0, 10, inputs),
        confidence=rng.random(inputs).astype(np.float32),
    )
    with tempfile.TemporaryDirectory() as folder:
        path = write_trace(Path(folder) / "bench.parquet", run)
        read_s = best_of(lambda: read_trace(path))
        bare_s = best_of(lambda: pq.read_table(path))
        size = path.stat().st_size
    return {
        "read_inputs": inputs,
        "read_s": read_s,
        "read_vs_bare_pyarrow": read_s / bare_s,
        "read_mdecisions_per_s": codes.size / read_s / 1e6,
        "file_mb": size / 1e6,
    }


def bench_tables() -> dict:
    """Every (layer, option) of ResNet-74 for every shipped preset (no disk cache), and the tiling search."""
    from cost_models import build_cost_table, list_presets, load_preset, pricing
    from cost_models._tiling import search, search_reference
    from dfs_sim.layer_table import ConvLayer, cifar_resnet_layers

    layers = cifar_resnet_layers(74)
    build_cost_table(cifar_resnet_layers(8), "bitfusion_eyeriss", use_cache=False)  # compile the kernels

    memos = [value for value in vars(pricing).values() if hasattr(value, "cache_clear")]

    def all_tables():
        for memo in memos:  # every entry is searched again, not looked up
            memo.cache_clear()
        for name in list_presets():
            build_cost_table(layers, name, use_cache=False)

    tables_s = best_of(all_tables, repeat=2)
    preset = load_preset("bitfusion_eyeriss").replace(
        policy__output_bits="acc", policy__fill_drain="promoted", policy__search_objective="cycles"
    )
    layer = ConvLayer(in_ch=64, out_ch=64, in_h=58, in_w=58, kernel=3)  # the public simulator's anchor layer
    dims, mapping = pricing.search_problem(layer, preset, 8, 8)
    assert search(*dims, mapping) == search_reference(*dims, mapping), "search differs from its reference"
    fast_s = best_of(lambda: search(*dims, mapping), repeat=20)
    reference_s = best_of(lambda: search_reference(*dims, mapping), repeat=1)
    return {
        "tables_s": tables_s,
        "table_entries": len(layers) * 7 * len(list_presets()),
        "search_s": fast_s,
        "search_reference_s": reference_s,
        "search_speedup": reference_s / fast_s,
    }


def bench_cli() -> dict:
    """The README's main command on the bundled example, cold (empty Numba and cost-table caches) and warm."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    importing = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import time; t = time.perf_counter(); import dfs_sim.replay, "
                "analysis.pipeline, sys; print(time.perf_counter() - t, 'torch' in sys.modules)"
            ),
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout.split()
    if not any(EXAMPLE.glob("*.parquet")):
        return {"import_s": float(importing[0]), "torch_imported": importing[1] == "True"}
    times = {}
    with tempfile.TemporaryDirectory() as folder:
        cold_env = dict(env, NUMBA_CACHE_DIR=str(Path(folder) / "numba"), DFS_SIM_CACHE=str(Path(folder) / "tables"))
        for label in ("cold", "warm", "warm_again"):  # warm: Numba and cost-table caches filled, new output folder
            out = Path(folder) / f"results_{label}"
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "dfs_sim.replay", str(EXAMPLE), "--out", str(out), "--quiet"],
                env=cold_env,
                cwd=ROOT,
                check=True,
            )
            times[label] = time.perf_counter() - start
    return {
        "import_s": float(importing[0]),
        "torch_imported": importing[1] == "True",
        "cli_cold_s": times["cold"],
        "cli_warm_s": min(times["warm"], times["warm_again"]),
    }


def bench_model() -> dict:
    """The model side's measurements (:mod:`dfs_sim.model.benchmark`), when torch is installed."""
    try:
        from dfs_sim.model import benchmark
    except ImportError:
        return {}
    return {**benchmark.bench_grouped_inference(), **benchmark.bench_training()}


def bench_sweep() -> dict:
    """Sweep throughput on the bundled traces (ResNet-38 tables): the default (in-process at this size) and a local
    Dask cluster of 2 workers, each from an empty cost-table cache."""
    if not any(EXAMPLE.glob("*.parquet")):
        return {}
    from analysis.sweep import run_sweep

    spec = ROOT / "examples" / "sweeps" / "bitfusion_memory.toml"
    seconds = {}
    saved = os.environ.get("DFS_SIM_CACHE")
    try:
        for label, workers in (("default", None), ("dask", 2)):
            with tempfile.TemporaryDirectory() as folder:
                os.environ["DFS_SIM_CACHE"] = str(Path(folder) / "tables")
                start = time.perf_counter()
                result = run_sweep(spec, EXAMPLE, workers=workers, progress=False)
                seconds[label] = time.perf_counter() - start
    finally:
        if saved is None:
            os.environ.pop("DFS_SIM_CACHE", None)
        else:
            os.environ["DFS_SIM_CACHE"] = saved
    points = result.frame["point"].nunique()
    return {
        "sweep_points": points,
        "sweep_s": seconds["default"],
        "sweep_points_per_s": points / seconds["default"],
        "sweep_dask_points_per_s": points / seconds["dask"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a minute: 1 M inputs instead of 10 M")
    parser.add_argument("--inputs", type=int, help="inputs for the replay benchmark (default 10 M, quick 1 M)")
    parser.add_argument(
        "--e2e-inputs", type=int, help="inputs of the end-to-end benchmark's trace (default 10 M, quick 1 M)"
    )
    parser.add_argument(
        "--large",
        type=int,
        metavar="N",
        help="only the large replay: one trace of N inputs (e.g. 100000000) with --per-input none and full, time "
        "and peak memory (minutes, about 8 GB to make the trace, and the full rows' disk)",
    )
    args = parser.parse_args(argv)
    if args.large:
        found = bench_large(args.large)
        print("[large] " + ", ".join(f"{key}={value:.4g}" for key, value in found.items()), flush=True)
        return 0
    inputs = args.inputs or (1_000_000 if args.quick else 10_000_000)
    e2e_inputs = args.e2e_inputs or (1_000_000 if args.quick else 10_000_000)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}, "
        f"Python {platform.python_version()}"
    )
    results: dict = {}
    for name, function in (
        ("replay", lambda: bench_replay(inputs)),
        ("end_to_end", lambda: bench_end_to_end(e2e_inputs)),
        ("dynamic", lambda: bench_dynamic(inputs // 10)),
        ("read", lambda: bench_read(inputs // 10)),
        ("tables", bench_tables),
        ("cli", bench_cli),
        ("model", bench_model),
        ("sweep", bench_sweep),
    ):
        start = time.perf_counter()
        found = function()
        results.update(found)
        shown = ", ".join(
            f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in found.items()
        )
        print(f"[{name}] {shown}  ({time.perf_counter() - start:.1f} s)", flush=True)
    keys = (
        "replay_gsums",
        "replay_vs_bound",
        "replay_vs_numpy",
        "replay_vs_pandas",
        "e2e_replay_vs_plain",
        "e2e_replay_s",
        "e2e_replay_peak_mb",
        "e2e_full_vs_plain",
        "e2e_full_s",
        "e2e_full_peak_mb",
        "read_mdecisions_per_s",
        "tables_s",
        "search_speedup",
        "cli_warm_s",
        "model_speedup",
        "train_backbone_speedup",
        "train_gate_speedup",
        "train_joint_speedup",
        "sweep_points_per_s",
        "sweep_dask_points_per_s",
    )
    print("summary: " + " ".join(f"{key}={results[key]:.3g}" for key in keys if key in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
