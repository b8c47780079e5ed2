"""``python -m cost_models.table``: per-layer costs for every option as CSV, for people who want the table itself.

    python -m cost_models.table --preset bitfusion_eyeriss --arch resnet38 [--options dfs|skipnet]
    python -m cost_models.table --preset bitfusion_eyeriss stripes --options q4,w8a4,q8   # several presets, any widths
    python -m cost_models.table --preset stripes --topology net.csv          # a SCALE-Sim topology
    python -m cost_models.table --preset loom --arch resnet20 --haq-out t.npy --haq-metric cycles --max-bits 16
    python -m cost_models.table --preset stripes --module torchvision.models:resnet18 --input-shape 3,224,224
    python -m cost_models.table --preset bitfusion_eyeriss --onnx model.onnx     # any ONNX file (needs onnx)
    python -m cost_models.table --preset stripes_dynamic --effective-bits 6      # activations needing 6 bits
    python -m cost_models.table --preset bitfusion_eyeriss --onnx model.onnx --policy widths.toml   # per-layer widths
    python -m cost_models.table --preset stripes --reference static_r38_fp.parquet --policy widths.toml \
        --policy-trace traces/policy_widths.parquet      # the policy as a static run, to replay beside traces

With ``--policy`` the rows are the layers at the policy's widths, then a ``total`` row.

Bad input prints one line on stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import pandas as pd

from cost_models.haq import HAQ_METRICS, write_haq_table
from cost_models.policy import load_policy, policy_frame, policy_run
from cost_models.preset import load_preset
from cost_models.rows import layer_costs
from dfs_sim.errors import ConfigError, DfsSimError, OutputError
from dfs_sim.importers import layer_table_from_onnx, layer_table_from_scalesim
from dfs_sim.layer_table import LayerTable, cifar_resnet_layers
from dfs_sim.options import options_for_method, parse_options
from dfs_sim.traces import read_trace, write_trace

__all__ = ["main"]


def _arch(text: str, method: str, options) -> LayerTable:
    """The gated CIFAR ResNet with ``method``'s options (its gate's layers included: SkipNet's has one output)."""
    match = re.fullmatch(r"resnet(\d+)", text.lower())
    if not match:
        raise DfsSimError("--arch", f"expected resnetN (N = 6n+2, e.g. resnet38), got {text!r}")
    gate_outputs = 1 if method == "skipnet" else None
    return cifar_resnet_layers(int(match.group(1)), options=options, gate_outputs=gate_outputs)


def _input_shape(text: str | None) -> tuple[int, ...]:
    if text is None:
        raise DfsSimError("--input-shape", "--module needs the input shape without the batch, e.g. 3,224,224")
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(size < 1 for size in shape):
        raise DfsSimError(
            "--input-shape", f"expected positive integers separated by commas, e.g. 3,224,224, got {text!r}"
        )
    return shape


def _module_table(spec: str, input_shape: tuple[int, ...], gated: str | None) -> LayerTable:
    """The layer table of the module ``package.module:factory`` returns, traced on the model side (torch)."""
    try:
        from dfs_sim.model.from_torch import layer_table_from_factory
    except ImportError:
        raise DfsSimError("--module", "tracing a torch module needs torch: pip install 'dfs-sim[model]'") from None
    return layer_table_from_factory(spec, input_shape, gated=gated)


def _with_total(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a last row ``layer = "total"`` summing the cost columns over the layers."""
    summed = ["macs", "cycles", "latency_us", "energy_pj", "e_compute_pj", "e_sram_pj", "e_dram_pj", "dram_bits"]
    total = {"preset": frame["preset"].iloc[0], "layer": "total", "block": -1, **frame[summed].sum().to_dict()}
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


def _write_policy_trace(path: str, run) -> None:
    target = Path(path)
    if target.exists():
        raise OutputError(target, "exists; the policy trace is written to a new file only")
    if target.suffix != ".parquet":
        raise OutputError(target, "a trace file ends in .parquet")
    write_trace(target, run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cost_models.table", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--preset", required=True, nargs="+", help="preset names or paths to preset .toml files (one or more)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--arch", default=None, help="resnetN, the gated CIFAR ResNet (default resnet38)")
    source.add_argument("--topology", default=None, help="SCALE-Sim topology CSV instead of --arch")
    source.add_argument(
        "--module",
        default=None,
        help="package.module:factory returning a torch.nn.Module (needs torch), e.g. a torchvision constructor",
    )
    source.add_argument("--onnx", default=None, help="an ONNX file with static shapes (needs the onnx package)")
    source.add_argument("--reference", default=None, help="a trace: its network's layer table (with --policy-trace)")
    parser.add_argument(
        "--input-shape", default=None, help="with --module: one input without the batch, e.g. 3,224,224"
    )
    parser.add_argument(
        "--gated",
        default=None,
        help="with --module, --onnx or --topology: regex naming the gateable units, e.g. 'layer\\d\\.\\d+'",
    )
    parser.add_argument(
        "--options",
        default="dfs",
        help="a method's option list (dfs, dfs_binary, skipnet; default dfs) or option names, comma-separated "
        "(skip, fp, qN, wNaM, e.g. q4,w8a4,q8; fp is added when missing, for the layers that always run)",
    )
    parser.add_argument("--policy", default=None, help="per-layer widths (TOML or CSV, cost_models/policy.py)")
    parser.add_argument(
        "--policy-trace",
        default=None,
        help="with --policy and --reference: write the policy as a static run of the reference's inputs (new file)",
    )
    parser.add_argument(
        "--effective-bits",
        type=int,
        default=None,
        help="with a dynamic-precision preset (e.g. stripes_dynamic): cost every option as if the activations "
        "needed only this many bits (leading zeros trimmed at run time)",
    )
    parser.add_argument("--haq-out", default=None, help="also write a HAQ lookup table (.npy) [layer, w-1, a-1]")
    parser.add_argument("--haq-metric", default="energy_pj", choices=HAQ_METRICS)
    parser.add_argument("--max-bits", type=int, default=8, help="HAQ table bits 1..max-bits (default 8)")
    args = parser.parse_args(argv)
    try:
        presets = [load_preset(name) for name in args.preset]
        preset = presets[0]
        options = _options(args.options)
        if args.onnx:
            layers = layer_table_from_onnx(args.onnx, gated=args.gated)
        elif args.module:
            layers = _module_table(args.module, _input_shape(args.input_shape), args.gated)
        elif args.topology:
            layers = layer_table_from_scalesim(args.topology, gated=args.gated)
        elif args.reference:
            reference = read_trace(args.reference)
            layers = reference.layers
        else:
            layers = _arch(args.arch or "resnet38", args.options if "," not in args.options else "dfs", options)
        if args.max_bits < 1 or args.max_bits > 32:
            raise DfsSimError("--max-bits", f"must be in 1..32, got {args.max_bits}")
        if len(presets) > 1 and (args.policy_trace or args.haq_out):
            raise ConfigError("--preset", "--policy-trace and --haq-out take one preset")
        if args.effective_bits is not None:
            if not all(p.dynamic_precision for p in presets):
                raise ConfigError("--effective-bits", f"preset {preset.name!r} has no array.dynamic_precision")
            if args.effective_bits < 1 or args.policy:
                raise ConfigError("--effective-bits", "must be 1 or more, and is not combined with --policy")
        if args.policy_trace and not (args.policy and args.reference):
            raise ConfigError("--policy-trace", "needs --policy and --reference (the trace whose inputs it reuses)")
        if args.policy:
            policy = load_policy(args.policy)
            frame = pd.concat([_with_total(policy_frame(layers, p, policy)) for p in presets], ignore_index=True)
            if args.policy_trace:
                _write_policy_trace(args.policy_trace, policy_run(reference, policy))
        else:
            frame = pd.concat(
                [layer_costs(layers, p, options, args.effective_bits) for p in presets], ignore_index=True
            )
        if args.haq_out:
            write_haq_table(args.haq_out, layers, preset, args.haq_metric, args.max_bits)
    except (DfsSimError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        _integers(frame).to_csv(sys.stdout, index=False)
    except BrokenPipeError:  # the reader stopped early (| head): not an error of ours
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the interpreter closes it at exit
    return 0


def _options(text: str):
    """A method's option list, or option names separated by commas (fp added when missing)."""
    if "," not in text and not re.fullmatch(r"skip|fp|q\d+|w\d+a\d+", text):
        try:
            return options_for_method(text)
        except KeyError as error:
            raise DfsSimError("--options", str(error.args[0])) from None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if "fp" not in names:
        names.append("fp")
    try:
        return parse_options(names)
    except ValueError as error:
        raise DfsSimError("--options", str(error)) from None


def _integers(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns whose every value is a whole number printed as integers (a missing block stays empty)."""
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values) and values.dropna().eq(values.dropna().round()).all():
            frame[column] = values.astype("Int64")
    return frame


if __name__ == "__main__":
    sys.exit(main())
