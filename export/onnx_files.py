"""Writing ONNX files so that no reader ever finds half of one."""

from __future__ import annotations

from pathlib import Path

import onnx


def save_whole(proto: onnx.ModelProto, path: str | Path) -> None:
    """Write through a hidden file renamed into place: whoever reads path (the service starting, a
    re-export over a shipped model) finds the old file or the new one, never half of one."""
    path = Path(path)
    part = path.with_name(f".{path.name}.part")
    try:
        onnx.save(proto, str(part))
        part.replace(path)
    finally:
        part.unlink(missing_ok=True)
