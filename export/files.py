"""Writing files so that no reader ever finds half of one: ONNX models, checkpoints, optimizer states."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import onnx


def write_whole(path: str | Path, write: Callable[[Path], object]) -> None:
    """write(part) to a hidden file beside path, then rename it into place: whoever reads path (the service
    starting, a re-export over a shipped model, a resumed run) finds the old file or the new one, never
    half of one. A write that fails or is interrupted leaves no part behind."""
    path = Path(path)
    part = path.with_name(f".{path.name}.part")
    try:
        write(part)
        part.replace(path)
    finally:
        part.unlink(missing_ok=True)


def save_whole(proto: onnx.ModelProto, path: str | Path) -> None:
    """onnx.save through write_whole."""
    write_whole(path, lambda part: onnx.save(proto, str(part)))
