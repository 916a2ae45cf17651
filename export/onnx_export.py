"""Export a StreamingModel to a contract ONNX file, then check it through the service's own loader."""

from __future__ import annotations

import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from export.files import save_whole
from export.streaming import StreamingModel
from streamd.contract import AUDIO_INPUT, SCORES_OUTPUT, STATE_IN_PREFIX, STATE_OUT_PREFIX, ModelInfo
from streamd.model import Model, load_model

OPSET = 17


class ContractGraph(nn.Module):
    """(audio, *state) -> (probabilities, *next state): what goes into the ONNX file."""

    def __init__(self, model: StreamingModel):
        super().__init__()
        self.model = model

    def forward(self, audio, *state):
        logits, next_state = self.model.step(audio, list(state))
        return (torch.sigmoid(logits), *next_state)


def code_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def model_info(model: StreamingModel, provenance: dict | None = None, licence: str = "unspecified",
               extra: dict[str, str] | None = None) -> ModelInfo:
    card = model.card
    prov = {"code_revision": code_revision(), "date": date.today().isoformat()}
    prov.update(provenance or {})
    return ModelInfo(
        sample_rate_hz=card.sample_rate_hz,
        hop_samples=tuple(card.hop_samples),
        labels=card.labels,
        family=card.family,
        receptive_field_s=round(card.receptive_field_s, 4),
        provenance=prov,
        licence=licence,
        extra=extra or {},
    )


def export_onnx(model: StreamingModel, path: str | Path, info: ModelInfo) -> Path:
    """Write model to path with the contract's names and metadata. The audio length is dynamic
    when the model accepts several hops."""
    path = Path(path)
    model = model.eval()
    shapes = model.state_shapes()
    state_names = list(shapes)
    hop = model.card.hop_samples[0]
    example = (torch.zeros(1, hop), *model.init_state(1))
    input_names = [AUDIO_INPUT] + [STATE_IN_PREFIX + n for n in state_names]
    output_names = [SCORES_OUTPUT] + [STATE_OUT_PREFIX + n for n in state_names]
    dynamic_axes = {AUDIO_INPUT: {1: "hop_samples"}} if len(model.card.hop_samples) > 1 else None
    with warnings.catch_warnings(), torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        raw = Path(tmp) / "graph.onnx"
        torch.onnx.export(
            ContractGraph(model), example, str(raw), input_names=input_names, output_names=output_names,
            dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False,
        )
        proto = onnx.load(str(raw))
    del proto.metadata_props[:]
    for key, value in info.to_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    save_whole(proto, path)
    return path


@dataclass(frozen=True)
class ParityReport:
    hop_samples: int
    n_hops: int
    max_abs_score_diff: float
    max_abs_state_diff: float


def check_parity(model: StreamingModel, loaded: Model, audio: np.ndarray, hop_samples: int) -> ParityReport:
    """Step torch and onnxruntime side by side over audio; return the worst differences."""
    model = model.eval()
    torch_state = model.init_state(1)
    onnx_state = loaded.new_state()
    names = [s.input_name for s in loaded.state_specs]
    order = [STATE_IN_PREFIX + n for n in model.state_shapes()]
    worst_score = worst_state = 0.0
    n_hops = len(audio) // hop_samples
    with torch.no_grad():
        for i in range(n_hops):
            hop = audio[i * hop_samples : (i + 1) * hop_samples]
            logits, torch_state = model.step(torch.from_numpy(hop)[None], torch_state)
            scores, onnx_state = loaded.step(hop, onnx_state)
            worst_score = max(worst_score, float(np.abs(torch.sigmoid(logits)[0].numpy() - scores).max()))
            for name, t in zip(order, torch_state):
                worst_state = max(worst_state, float(np.abs(t.numpy() - onnx_state[name]).max()))
    assert sorted(names) == sorted(order)
    return ParityReport(hop_samples, n_hops, worst_score, worst_state)


def test_signal(seconds: float, sample_rate_hz: int, seed: int = 0) -> np.ndarray:
    """Noise plus a chirp and tone bursts: exercises every mel band and the carried state."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate_hz)) / sample_rate_hz
    chirp = 0.3 * np.sin(2 * np.pi * (100 + 3000 * t / seconds) * t)
    bursts = 0.3 * np.sin(2 * np.pi * 1000 * t) * (np.sin(2 * np.pi * 1.5 * t) > 0.5)
    return (chirp + bursts + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def export_and_check(model: StreamingModel, path: str | Path, info: ModelInfo, seconds: float = 8.0,
                     tolerance: float = 1e-4) -> list[ParityReport]:
    """Export, reload through streamd's loader, check parity at every hop on random and synthetic audio.
    The file goes to path only once it passes; a file already there stays as it was otherwise."""
    path = Path(path)
    candidate = path.with_name(f".{path.stem}.candidate.onnx")
    try:
        export_onnx(model, candidate, info)
        loaded = load_model(candidate)
        sr = model.card.sample_rate_hz
        rng = np.random.default_rng(1)
        signals = [test_signal(seconds, sr), (0.1 * rng.standard_normal(int(seconds * sr))).astype(np.float32)]
        reports = [check_parity(model, loaded, audio, hop) for hop in model.card.hop_samples for audio in signals]
        worst = max(r.max_abs_score_diff for r in reports)
        if worst > tolerance:
            raise AssertionError(f"{path}: ONNX and torch scores differ by {worst:.2e} (tolerance {tolerance:.0e}); "
                                 "nothing written")
        candidate.replace(path)
    finally:
        candidate.unlink(missing_ok=True)
    return reports
