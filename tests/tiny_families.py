"""Tiny models of every family for the family, export, quantisation and loader tests (seconds to build and export)."""

from __future__ import annotations

import numpy as np
import torch

from export.families import FAMILIES, build_model
from export.onnx_export import test_signal
from streamd.contract import Label

LABELS = (Label("yes", "keyword"), Label("stop", "keyword"), Label("dog", "tag"))
SAMPLE_RATE_HZ = 16000
WINDOW_SAMPLES = 8000  # windowed families: 0.5 s, so hops 160, 320 and 480 ms

# family -> (size, overrides): the smallest config of each family that still has every part.
TINY = {
    "sat": ("tiny", dict(d_model=32, n_layers=2, n_heads=2, cache_columns=3, hop_columns=(1, 2, 3), dropout=0.0)),
    "uit": ("tiny", dict(d_model=32, n_layers=1, n_heads=2, window_samples=WINDOW_SAMPLES, dropout=0.0)),
    "dscnn": ("small", dict(channels=16, n_blocks=2, window_samples=WINDOW_SAMPLES, dropout=0.0)),
    "bcresnet": ("1", dict(tau=0.5, window_samples=WINDOW_SAMPLES, dropout=0.0)),
    "mobilenet": ("mn02", dict(width=0.1, window_samples=WINDOW_SAMPLES, dropout=0.0)),
}
assert set(TINY) == set(FAMILIES)


def tiny(family: str, seed: int = 0):
    """An eval-mode tiny model with random weights, whose front-end normalisation and batch-norm
    statistics are set from a few seconds of test audio, so that its scores move with the audio."""
    torch.manual_seed(seed)
    size, overrides = TINY[family]
    model = build_model(family, LABELS, size, **overrides)
    clips = torch.from_numpy(np.stack([audio(1.0, seed=100 + i) for i in range(8)]))
    with torch.no_grad():
        raw = model.frontend.raw(clips)
        model.frontend.set_normalisation(raw.mean(dim=(0, 1)), raw.std(dim=(0, 1)))
        batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if batch_norms:  # statistics from real activations, as training would leave them
            for bn in batch_norms:
                bn.reset_running_stats()
                bn.momentum = None  # cumulative average
            model.train()
            model.classify(clips[:, : model.window_samples])
    return model.eval()


def audio(seconds: float, seed: int = 0) -> np.ndarray:
    """Test signal plus louder noise bursts: float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    signal = test_signal(seconds, SAMPLE_RATE_HZ, seed)
    gate = np.repeat(rng.random(int(seconds * 10) + 1) > 0.6, SAMPLE_RATE_HZ // 10)[: len(signal)]
    return np.clip(signal + 0.3 * gate * rng.standard_normal(len(signal)), -1, 1).astype(np.float32)
