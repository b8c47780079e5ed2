"""Build DNNsim's inputs for the reference layers, run DNNsim, and parse its results into
``tests/data/dnnsim_reference.csv`` (validation/dnnsim/README.md says how and with what).

    python validation/dnnsim/run_reference.py capture            # ResNet-38 activations -> r38_levels.npz (torch)
    python validation/dnnsim/run_reference.py run --dnnsim /tmp/dnnsim [--work /tmp/dnnsim_work]

``capture`` needs the project's model extra (torch) and the Fashion-MNIST test images; ``run`` needs numpy and a
built DNNsim (isakedo/DNNsim, the folder holding the ``DNNsim`` binary and ``DRAMSim2/``).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import layers as L

ROOT = Path(__file__).resolve().parents[2]
OUT_CSV = ROOT / "tests" / "data" / "dnnsim_reference.csv"

# The example configurations of DNNsim @4748a60 (examples/<Arch>/<Arch>_example, the "Cycles" experiment): 16 tiles
# x 16 rows (filters) x 16 columns (windows; 1 for DaDianNao) x 16 lanes, pe_width 16, 1 GHz, DDR4-3200, 1 GiB
# global buffers. Loom is run as its example (1 activation bit per cycle), with 2 bits per cycle (the loom preset's
# act_bits_per_cycle) and with dynamic weights (DynLoom).
COMMON = """
        dataflow: "WindowFirstOutS"
        lanes: 16
        columns: {columns}
        rows: 16
        tiles: 16
        pe_width: 16
{extra}
        cpu_clock_freq: "1GHz"
        dram_conf: "DDR4_3200"
        dram_size: "16GiB"
        dram_start_act_address: 0x80000000
        dram_start_wgt_address: 0x00000000
        gbuffer_act_levels: 1
        gbuffer_wgt_levels: 1
        gbuffer_act_size: "1GiB"
        gbuffer_wgt_size: "1GiB"
        gbuffer_act_banks: 32
        gbuffer_wgt_banks: 256
        gbuffer_act_bank_width: 256
        gbuffer_wgt_bank_width: 256
        gbuffer_act_read_delay: 2
        gbuffer_act_write_delay: 2
        gbuffer_wgt_read_delay: 2
        abuffer_rows: 2
        abuffer_read_delay: 1
        wbuffer_rows: 2
        wbuffer_read_delay: 1
        obuffer_rows: 2
        obuffer_write_delay: 1
        composer_inputs: 256
        composer_delay: 1
        ppu_inputs: 16
        ppu_delay: 1
"""

# our name -> (DNNsim architecture, columns, extra parameters, prefix of its result file)
ARCHS = {
    "DaDianNao": ("DaDianNao", 1, "", "DaDianNao"),
    "Stripes": ("Stripes", 16, "", "Stripes"),
    "ShapeShifter": (
        "ShapeShifter",
        16,
        "        group_size: 1\n        column_registers: 0\n        minor_bit: false\n",
        "ShapeShifter",
    ),
    "Loom": (
        "Loom",
        16,
        "        group_size: 1\n        pe_serial_bits: 1\n        minor_bit: false\n        dynamic_weights: false\n",
        "Loom",
    ),
    "Loom_psb2": (
        "Loom",
        16,
        "        group_size: 1\n        pe_serial_bits: 2\n        minor_bit: false\n        dynamic_weights: false\n",
        "Loom",
    ),
    "DynLoom": (
        "Loom",
        16,
        "        group_size: 1\n        pe_serial_bits: 1\n        minor_bit: false\n        dynamic_weights: true\n",
        "DynLoom",
    ),
}

FIELDS = (
    "source",
    "arch",
    "layer",
    "kind",
    "in_ch",
    "out_ch",
    "in_hw",
    "kernel",
    "stride",
    "padding",
    "out_hw",
    "sample",
    "a_bits",
    "w_bits",
    "compute_cycles",
    "cycles",
    "scheduled_pes",
    "idle_pes",
)


def capture() -> None:
    """ResNet-38 activations (forward hooks on the full-precision backbone, RESNET_IMAGES of the test split) and
    weights, as base levels (layers.py), into r38_levels.npz."""
    import torch

    from dfs_sim.model.checkpoint import load_backbone_into, load_checkpoint
    from dfs_sim.model.data import load_split
    from dfs_sim.model.registry import create_model
    from dfs_sim.model.resnet import _compute_layers

    record = load_checkpoint(ROOT / L.RESNET_CHECKPOINT)
    model = create_model("static_resnet38", num_classes=10, in_channels=1)
    load_backbone_into(model, record, L.RESNET_CHECKPOINT)
    model.eval()
    modules = {row[0]: row[1] for row in _compute_layers(model)}
    seen: dict[str, torch.Tensor] = {}
    handles = [
        modules[layer.name].register_forward_hook(
            lambda _m, inputs, _o, name=layer.name: seen.__setitem__(name, inputs[0].detach().clone())
        )
        for layer in L.RESNET
    ]
    split = load_split("fashion-mnist", "test")
    images = split.normalize(split.images[list(L.RESNET_IMAGES)])
    with torch.no_grad():
        model(images)
    for handle in handles:
        handle.remove()
    arrays = {}
    for layer in L.RESNET:
        x = seen[layer.name].double().numpy()
        assert x.shape[1:] == L.act_shape(layer), (layer.name, x.shape)
        low, high = float(x.min()), float(x.max())
        arrays[f"act:{layer.name}"] = np.rint((x - low) / (high - low) * L.ACT_BASE_MAX).astype(np.int16)
        w = modules[layer.name].weight.detach().double().numpy()
        assert w.shape == L.wgt_shape(layer), (layer.name, w.shape)
        arrays[f"wgt:{layer.name}"] = np.rint(w / np.abs(w).max() * L.WGT_BASE_MAX).astype(np.int16)
        print(f"{layer.name}: activations {x.shape} in [{low:.4g}, {high:.4g}], weights {w.shape}")
    np.savez_compressed(L.R38_LEVELS, **arrays)
    print(f"wrote {L.R38_LEVELS} ({L.R38_LEVELS.stat().st_size} bytes)")


def _write_network(work: Path, net: str, source: str, layers: tuple[L.Layer, ...], a: int, w: int) -> None:
    models, traces = work / "models" / net, work / "net_traces" / net
    models.mkdir(parents=True, exist_ok=True)
    traces.mkdir(parents=True, exist_ok=True)
    # model.csv: <name>,<conv|fc>,<stride>,<padding>, comma-separated, no header (base/src/NetReader.cpp)
    (models / "model.csv").write_text(
        "".join(f"{layer.name},{layer.kind},{layer.stride},{layer.padding}\n" for layer in layers)
    )
    # precision.txt: a skipped first line, then act magnitude, act fraction, wgt magnitude, wgt fraction per layer;
    # the layer's precision is magnitude + fraction (NetReader::read_precision)
    n = len(layers)
    (models / "precision.txt").write_text(
        "magnitude (+1 of the sign), fraction, wgt_magnitude, wgt_fraction\n"
        + "".join(";".join([str(v)] * n) + ";\n" for v in (a, 0, w, 0))
    )
    for layer in layers:
        acts, wgts = L.levels(source, layer, a, w)
        # float32 traces holding integers; quantised: true makes DNNsim cast them to 16-bit words (float_to_int)
        np.save(traces / f"act-{layer.name}-0.npy", acts.astype(np.float32))
        np.save(traces / f"wgt-{layer.name}.npy", wgts.astype(np.float32))


def _batch_text(net: str) -> str:
    experiments = "".join(
        f'    experiment {{\n        architecture: "{arch}"\n        task: "Cycles"\n'
        + COMMON.format(columns=columns, extra=extra)
        + "    }\n"
        for arch, columns, extra, _ in ARCHS.values()
    )
    return (
        f'simulate {{\n    network: "{net}"\n    model: "CSV"\n    data_type: "Fixed"\n    data_width: 16\n'
        f"    quantised: true\n{experiments}}}\n"
    )


def _result_file(results: Path, ours: str) -> Path:
    _, _, extra, prefix = ARCHS[ours]
    psb = "_PSB2" if "pe_serial_bits: 2" in extra else "_PSB1"
    found = [
        p
        for p in results.glob("*_cycles.csv")
        if p.name.startswith(prefix) and not (prefix == "Loom" and psb not in p.name)
    ]
    if len(found) != 1:
        raise RuntimeError(f"{ours}: expected one result file in {results}, found {found}")
    return found[0]


def _per_sample(path: Path) -> list[dict[str, str]]:
    """The 'Per sample scalar results' table of a DNNsim result file (sys/src/Stats.cpp dump_csv)."""
    lines = path.read_text().splitlines()
    start = lines.index("Per sample scalar results:") + 1
    header = lines[start].split(",")
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(dict(zip(header, line.split(","), strict=True)))
    return rows


def run(dnnsim: Path, work: Path) -> None:
    binary = dnnsim / "DNNsim"
    if not binary.is_file():
        raise SystemExit(f"no DNNsim binary at {binary}; build it first (README.md)")
    work.mkdir(parents=True, exist_ok=True)
    link = work / "DRAMSim2"
    if not link.exists():
        link.symlink_to(dnnsim / "DRAMSim2")
    rows = []
    groups = {"synthetic": (L.SYNTHETIC, L.SYNTHETIC_PRECISIONS), "resnet38": (L.RESNET, L.RESNET_PRECISIONS)}
    for source, (layers, precisions) in groups.items():
        for a, w in precisions:
            net = f"{source}_a{a}w{w}"
            _write_network(work, net, source, layers, a, w)
            batch = work / f"{net}.prototxt"
            batch.write_text(_batch_text(net))
            started = time.time()
            subprocess.run([str(binary), str(batch), "--quiet"], cwd=work, check=True, stdout=subprocess.DEVNULL)
            print(f"{net}: {time.time() - started:.1f} s", flush=True)
            by_name = {layer.name: layer for layer in layers}
            for ours in ARCHS:
                for result in _per_sample(_result_file(work / "results" / net, ours)):
                    layer = by_name[result["Layer"]]
                    rows.append(
                        {
                            "source": source,
                            "arch": ours,
                            "layer": layer.name,
                            "kind": layer.kind,
                            "in_ch": layer.in_ch,
                            "out_ch": layer.out_ch,
                            "in_hw": layer.in_hw,
                            "kernel": layer.kernel,
                            "stride": layer.stride,
                            "padding": layer.padding,
                            "out_hw": layer.out_hw,
                            "sample": int(result["Sample"]),
                            "a_bits": a,
                            "w_bits": w,
                            "compute_cycles": int(result["compute_cycles"]),
                            "cycles": int(result["cycles"]),
                            "scheduled_pes": int(result["scheduled PEs"]),
                            "idle_pes": int(result["idle PEs"]),
                        }
                    )
    with open(OUT_CSV, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {OUT_CSV}: {len(rows)} rows")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("capture", help="capture the ResNet-38 activations (needs torch)")
    runner = sub.add_parser("run", help="run DNNsim and write tests/data/dnnsim_reference.csv")
    runner.add_argument("--dnnsim", type=Path, required=True, help="DNNsim source folder with the built binary")
    runner.add_argument("--work", type=Path, default=Path("/tmp/dnnsim_work"), help="scratch folder for its inputs")
    args = parser.parse_args()
    if args.command == "capture":
        capture()
    else:
        run(args.dnnsim.resolve(), args.work.resolve())


if __name__ == "__main__":
    main()
