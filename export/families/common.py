"""What the windowed families share: the hop sizes they accept and their model card."""

from __future__ import annotations

from export.families.sat import SATConfig
from export.frontend import FrontEndConfig
from export.streaming import ModelCard
from streamd.contract import Label

_SAT = SATConfig()
# The SAT latency choices (160, 320, 480, 960, 1920 ms at 16 kHz), so that every family offers the same menu.
SAT_HOP_SAMPLES = tuple(c * _SAT.patch_frames * _SAT.frontend.hop_samples for c in _SAT.hop_columns)


def hops_within(window_samples: int) -> tuple[int, ...]:
    """The SAT hops a windowed model of this window can take (a hop longer than the window would skip audio)."""
    hops = tuple(h for h in SAT_HOP_SAMPLES if h <= window_samples)
    if not hops:
        raise ValueError(f"a window of {window_samples} samples is shorter than the smallest hop {SAT_HOP_SAMPLES[0]}")
    return hops


def windowed_card(family: str, labels: tuple[Label, ...], frontend: FrontEndConfig, window_samples: int) -> ModelCard:
    return ModelCard(
        family=family,
        labels=tuple(labels),
        sample_rate_hz=frontend.sample_rate_hz,
        hop_samples=hops_within(window_samples),
        receptive_field_s=window_samples / frontend.sample_rate_hz,
    )


def frames_in(frontend: FrontEndConfig, window_samples: int) -> int:
    """Feature frames the front end makes from one window (frames are not centred)."""
    return (window_samples - frontend.win_samples) // frontend.hop_samples + 1
