"""SpecAugment (Park et al. 2019) on feature tensors: time and frequency masks, drawn from an
explicit np.random.Generator so a training run is reproducible from its seed."""

from __future__ import annotations

import numpy as np
import torch


def _mask_spans(rng: np.random.Generator, count: int, max_width: int, size: int) -> list[tuple[int, int]]:
    spans = []
    for _ in range(count):
        width = int(rng.integers(0, min(max_width, size) + 1))
        start = int(rng.integers(0, size - width + 1))
        spans.append((start, start + width))
    return spans


def spec_augment(features: torch.Tensor, rng: np.random.Generator, time_masks: int = 2,
                 max_time_frames: int = 20, freq_masks: int = 2, max_freq_bins: int = 8,
                 fill: float | None = None) -> torch.Tensor:
    """Masked copy of features shaped (..., frames, bins); leading dims (batch) get masks of their own.

    Each mask's width is uniform in [0, max]; masked cells get `fill`, by default the mean of that
    example's features (0 for normalised features, the typical level for raw log-mel)."""
    out = features.clone(memory_format=torch.contiguous_format)  # so reshape below is a view
    frames, bins = out.shape[-2:]
    flat = out.reshape(-1, frames, bins)  # (N, frames, bins), a view of out
    for example in flat:
        value = float(example.mean()) if fill is None else fill
        for a, b in _mask_spans(rng, time_masks, max_time_frames, frames):
            example[a:b, :] = value
        for a, b in _mask_spans(rng, freq_masks, max_freq_bins, bins):
            example[:, a:b] = value
    return out
