"""Average the weights of models fine-tuned from one another (a "model soup", WiSE-FT).

    python -m export.soup OUT.pt models/streamd-sat.onnx runs/sat-newvoice/last.pt [--weights 1 1]

Fine-tuning the shipped model on new data (other voices, teacher targets) gains one thing and loses
another; averaging the weights of the two places the model on the straight line between them, where
the gains and the losses come in proportion (docs/data.md "Averaging fine-tuned weights"). Only models
of one architecture and label set, fine-tuned from one another, average into a working model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from export.families import save_checkpoint
from export.onnx_import import load_weights


def average(paths: list[Path], weights: list[float]) -> tuple[torch.nn.Module, dict]:
    """(the first model holding the weighted mean of every model's tensors, the first model's meta)."""
    if len(paths) != len(weights) or not paths:
        raise ValueError(f"{len(paths)} models and {len(weights)} weights")
    if min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {weights}")
    model, meta = load_weights(paths[0])
    first = model.state_dict()
    total = {key: weights[0] * tensor.double() for key, tensor in first.items()}
    for path, weight in zip(paths[1:], weights[1:]):
        other, other_meta = load_weights(path)
        for field in ("family", "size", "overrides", "labels"):
            if other_meta[field] != meta[field]:
                raise ValueError(f"{path}: not the same {field} as {paths[0]}; only one architecture and label set average")
        for key, tensor in other.state_dict().items():
            total[key] += weight * tensor.double()
    weight_sum = sum(weights)
    model.load_state_dict({key: (tensor / weight_sum).to(first[key].dtype) for key, tensor in total.items()})
    return model, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.soup", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="checkpoint to write (export it with export.export_model)")
    parser.add_argument("models", type=Path, nargs="+", help="checkpoints or SAT/UiT ONNX files export_model wrote")
    parser.add_argument("--weights", type=float, nargs="+", default=None, help="one per model (default: equal)")
    args = parser.parse_args(argv)
    weights = args.weights or [1.0] * len(args.models)
    try:
        model, meta = average(args.models, weights)
    except ValueError as err:
        print(f"soup: {err}", file=sys.stderr)
        return 2
    extra = {"soup": [[str(path), weight] for path, weight in zip(args.models, weights)]}
    if meta.get("extra", {}).get("licence"):
        extra["licence"] = meta["extra"]["licence"]
    save_checkpoint(model, args.out, meta["family"], meta["size"], meta["overrides"], extra)
    print(f"wrote {args.out}: " + ", ".join(f"{weight:g} x {path}" for path, weight in zip(args.models, weights)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
