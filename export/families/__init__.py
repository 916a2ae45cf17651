"""The model families by name, their named sizes, and checkpoints that remember how to rebuild them.

    model = build_model("sat", DEFAULT_LABELS, "base", cache_columns=8)
    save_checkpoint(model, "runs/sat.pt", "sat", "base", {"cache_columns": 8}, {"recipe": "..."})
    model, meta = load_checkpoint("runs/sat.pt")   # same class, same weights, same normalisation

Overrides replace fields of the size's config dataclass; ``frontend`` may be given as a dict of
FrontEndConfig fields. Everything a checkpoint stores besides tensors is plain JSON-like data, so
``torch.load(weights_only=True)`` reads it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import torch

from export.families import bcresnet, dscnn, mobilenet, uit
from export.families.sat import SATConfig, SATModel
from export.frontend import FrontEndConfig
from export.streaming import StreamingModel
from streamd.contract import Label

CHECKPOINT_FORMAT = "streamd-checkpoint/1"
DEFAULT_SIZE = "default"

# family -> (builder(labels, cfg), {size name: config}, name of the default size)
_SAT_SIZES = {
    "tiny": SATConfig(d_model=96, n_layers=3, n_heads=4),
    "small": SATConfig(),
    "base": SATConfig(d_model=192, n_layers=6, n_heads=6),
    "large": SATConfig(d_model=256, n_layers=8, n_heads=8, mlp_ratio=4),
}
_REGISTRY: dict[str, tuple[Callable, dict[str, Any], str]] = {
    "sat": (SATModel, _SAT_SIZES, "small"),
    "uit": (
        uit.build,
        {"tiny": uit.UiTConfig(d_model=64, n_layers=2), "small": uit.UiTConfig(), "base": uit.UiTConfig(d_model=192, n_layers=6, n_heads=6)},
        "small",
    ),
    "dscnn": (
        dscnn.build,
        {"small": dscnn.DSCNNConfig(), "medium": dscnn.DSCNNConfig(channels=172), "large": dscnn.DSCNNConfig(channels=276, n_blocks=5)},
        "small",
    ),
    "bcresnet": (
        bcresnet.build,
        {"1": bcresnet.BCResNetConfig(tau=1), "3": bcresnet.BCResNetConfig(tau=3), "8": bcresnet.BCResNetConfig(tau=8)},
        "3",
    ),
    "mobilenet": (
        mobilenet.build,
        {
            "mn02": mobilenet.MobileNetConfig(width=0.2),
            "mn04": mobilenet.MobileNetConfig(width=0.4),
            "mn10": mobilenet.MobileNetConfig(width=1.0),
            "teacher": mobilenet.MobileNetConfig(width=1.0, window_samples=160000),  # 10 s window
        },
        "mn04",
    ),
}
FAMILIES = tuple(_REGISTRY)


def sizes(family: str) -> tuple[str, ...]:
    return tuple(_family(family)[1])


def default_size(family: str) -> str:
    return _family(family)[2]


def config_for(family: str, size: str = DEFAULT_SIZE, **overrides):
    """The config dataclass of family at size, with overrides applied."""
    _, known, default = _family(family)
    size = default if size == DEFAULT_SIZE else size
    if size not in known:
        raise ValueError(f"family {family!r} has sizes {sorted(known)} (or {DEFAULT_SIZE!r}), not {size!r}")
    cfg = known[size]
    fields = {f.name for f in dataclasses.fields(cfg)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"{type(cfg).__name__} has no field(s) {unknown}; fields: {sorted(fields)}")
    return dataclasses.replace(cfg, **{k: _coerce(k, v) for k, v in overrides.items()})


def build_model(family: str, labels, size: str = DEFAULT_SIZE, **overrides) -> StreamingModel:
    """A fresh (untrained) model of family at a named size."""
    builder = _family(family)[0]
    return builder(tuple(labels), config_for(family, size, **overrides))


def save_checkpoint(model: StreamingModel, path: str | Path, family: str, size: str = DEFAULT_SIZE,
                    overrides: dict | None = None, extra: dict | None = None) -> Path:
    """Weights plus everything build_model needs; extra (e.g. provenance) must be plain data."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frontend = model.frontend
    payload = {
        "format": CHECKPOINT_FORMAT,
        "family": family,
        "size": size,
        "overrides": _plain(overrides or {}),
        "labels": [[label.name, label.kind] for label in model.card.labels],
        "normalisation": {"mean": frontend.feature_mean.tolist(), "std": frontend.feature_std.tolist()},
        "extra": _plain(extra or {}),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    torch.save(payload, path)
    return path


def load_checkpoint(path: str | Path) -> tuple[StreamingModel, dict]:
    """(model in eval mode, meta: family, size, overrides, labels, normalisation, extra)."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint (save it with export.families.save_checkpoint)")
    labels = tuple(Label(name, kind) for name, kind in payload["labels"])
    model = build_model(payload["family"], labels, payload["size"], **payload["overrides"])
    model.load_state_dict(payload["state_dict"])
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model.eval(), meta


def _family(family: str):
    if family not in _REGISTRY:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    return _REGISTRY[family]


def _coerce(name: str, value):
    """JSON-shaped override values -> the config's types (frontend dicts, tuples for lists)."""
    if name == "frontend" and isinstance(value, dict):
        return FrontEndConfig(**value)
    if isinstance(value, list):
        return tuple(value)
    return value


def _plain(value):
    if dataclasses.is_dataclass(value):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
