"""Export a checkpoint to a contract ONNX file, check it through streamd's loader, optionally quantise.

    python -m export.export_model runs/sat.pt --out models/sat.onnx --int8 \\
        --licence Apache-2.0 --provenance-json runs/sat.provenance.json

Prints the parity of ONNX against torch at every hop the file accepts, and with --int8 the size,
one-thread speed and score difference of the int8 file against float32 on real audio.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from export.onnx_import import load_weights
from export.onnx_export import ParityReport, export_and_check, model_info
from export.quantize import MODES, int8_copy_path, quantise_and_report
from streamd.contract import ContractError
from streamd.model import load_model


def read_provenance(arg: str | None) -> dict:
    """--provenance-json is a path to a JSON file or an inline JSON object."""
    if not arg:
        return {}
    text = Path(arg).read_text() if Path(arg).is_file() else arg
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("--provenance-json must hold a JSON object")
    return value


def parity_table(reports: list[ParityReport], sample_rate_hz: int) -> str:
    rows = ["| hop (samples) | hop (ms) | hops checked | max abs score diff | max abs state diff |", "|---:|---:|---:|---:|---:|"]
    for hop in sorted({r.hop_samples for r in reports}):
        mine = [r for r in reports if r.hop_samples == hop]
        rows.append(f"| {hop} | {1000 * hop / sample_rate_hz:.0f} | {sum(r.n_hops for r in mine)} | "
                    f"{max(r.max_abs_score_diff for r in mine):.1e} | {max(r.max_abs_state_diff for r in mine):.1e} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.export_model", description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a checkpoint written by export.families.save_checkpoint, or a SAT/UiT ONNX file export_model wrote")
    parser.add_argument("--out", type=Path, required=True, help="ONNX file to write (the int8 copy gets .int8.onnx)")
    parser.add_argument("--int8", action="store_true", help="also write an int8 copy and report its cost and accuracy")
    parser.add_argument("--int8-mode", choices=MODES, default="dynamic", help="dynamic (default) or static with calibration audio")
    parser.add_argument("--licence", default=None, help="licence of the weights (default: the checkpoint's, else 'unspecified')")
    parser.add_argument("--provenance-json", default=None, help="JSON file or inline JSON object merged into the provenance")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of test audio for the parity check")
    args = parser.parse_args(argv)

    model, meta = load_weights(args.checkpoint)
    extra = meta.get("extra", {})
    provenance = {"checkpoint": args.checkpoint.name, **extra.get("provenance", {}), **read_provenance(args.provenance_json)}
    licence = args.licence or extra.get("licence") or "unspecified"
    n_params = sum(p.numel() for p in model.parameters())
    info = model_info(model, provenance=provenance, licence=licence,
                      extra={"size": str(meta["size"]), "overrides": json.dumps(meta["overrides"], sort_keys=True),
                             "parameters": str(n_params)})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        reports = export_and_check(model, args.out, info, seconds=args.seconds)
    except (AssertionError, ContractError) as err:
        print(f"export failed: {err}", file=sys.stderr)
        return 1
    loaded = load_model(args.out)
    print(f"wrote {args.out}: family {meta['family']} size {meta['size']}, {n_params} parameters, "
          f"{len(info.labels)} labels, hops {list(info.hop_samples)}, state {loaded.state_bytes} bytes, "
          f"{args.out.stat().st_size} bytes on disk")
    print("ONNX vs torch, stepped from a zero state over synthetic and random audio:")
    print(parity_table(reports, info.sample_rate_hz))

    if args.int8:
        quantise_and_report(args.out, int8_copy_path(args.out), args.int8_mode)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
