"""A tiny hand-made contract model for the service tests: loud audio -> "yes" and "siren" high.

The score of "yes" and "siren" is sigmoid(4 * (mean log-mel energy over the last 0.25 s - LOUD)),
so a tone burst well above the noise floor fires them and silence does not; "no", "computer" and
"dog" always score 0.5. Deterministic (no random weights), exported through export.onnx_export.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_RATE_HZ = 16000
HOPS = (1600, 3200)  # 100 ms, 200 ms
WINDOW_SAMPLES = 4000
LABELS = (("yes", "keyword"), ("no", "keyword"), ("computer", "keyword"), ("siren", "tag"), ("dog", "tag"))
LOUD = -5.2  # mean log-mel energy: about -4 for the bursts below, about -6.4 for their noise floor


def build(path: str | Path) -> Path:
    import torch
    from torch import nn

    from export.frontend import FrontEnd, FrontEndConfig
    from export.onnx_export import export_onnx, model_info
    from export.streaming import ModelCard, WindowedModel
    from streamd.contract import Label

    class Energy(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("weights", torch.tensor([4.0, 0.0, 0.0, 4.0, 0.0]))

        def forward(self, features):  # (B, frames, n_mels) -> (B, n_labels)
            energy = features.mean(dim=(1, 2))[:, None]  # (B, 1)
            return (energy - LOUD) * self.weights

    labels = tuple(Label(n, k) for n, k in LABELS)
    card = ModelCard("tiny-energy", labels, SAMPLE_RATE_HZ, HOPS, WINDOW_SAMPLES / SAMPLE_RATE_HZ)
    model = WindowedModel(FrontEnd(FrontEndConfig(n_mels=16)), Energy(), card, WINDOW_SAMPLES)
    path = Path(path)
    export_onnx(model, path, model_info(model, {"data": "none (hand-made test model)"}, "Apache-2.0"))
    return path


def tone_bursts(bursts_s: list[tuple[float, float]], total_s: float, amplitude: float = 0.5) -> np.ndarray:
    """Quiet noise with 1 kHz tone bursts at the given (start_s, end_s) spans: float32 mono."""
    rng = np.random.default_rng(0)
    n = int(total_s * SAMPLE_RATE_HZ)
    audio = 0.001 * rng.standard_normal(n)
    t = np.arange(n) / SAMPLE_RATE_HZ
    for start, end in bursts_s:
        span = (t >= start) & (t < end)
        audio[span] += amplitude * np.sin(2 * np.pi * 1000 * t[span])
    return audio.astype(np.float32)


def service_folder(d: Path) -> Path:
    """d with what a `streamd` subprocess test runs: tiny.onnx, bursts.wav (two tone bursts in 3 s: each fires
    "yes" once and turns "siren" on) and config.yaml (100 ms hop, its bus and control sockets inside d)."""
    import soundfile

    build(d / "tiny.onnx")
    soundfile.write(d / "bursts.wav", tone_bursts([(0.5, 1.0), (1.6, 2.6)], 3.0), SAMPLE_RATE_HZ, subtype="FLOAT")
    (d / "config.yaml").write_text(
        'models: [{path: tiny.onnx, latency_ms: 100}]\n'
        'keywords: [{name: "yes", threshold: 0.9, n_of_m: [2, 3]}]\n'
        'tags: [{name: siren, min_duration_s: 0.2}]\n'
        f'bus: {{endpoint: "ipc://{d}/events"}}\ncontrol: {{endpoint: "ipc://{d}/control"}}\n')
    return d
