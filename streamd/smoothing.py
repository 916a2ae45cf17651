"""Tag smoothing: per label, turn a score per hop into start and end decisions.

The score is smoothed over a window of hops (moving mean or median). A tag turns on when the
smoothed score reaches ``on_threshold`` and stays on until it falls below ``off_threshold``
(hysteresis). It is only announced (``start``) once it has been on for ``min_duration_s``; a tag
that stays on for ``max_event_s`` is ended there and, if still on, starts again at once, so a
subscriber hears about a long sound at least every ``max_event_s``. Peak and mean are of the raw
scores of the hops inside the event. Everything is counted in samples.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

METHODS = ("mean", "median")


@dataclass(frozen=True)
class TagSmootherConfig:
    on_threshold: float = 0.5
    """Smoothed score (0..1) at which the tag turns on."""
    off_threshold: float = 0.3
    """Smoothed score (0..1) below which it turns off again; <= on_threshold."""
    window_hops: int = 3
    """Smoothing window (hops)."""
    method: str = "mean"
    """"mean" or "median" over the window."""
    min_duration_s: float = 0.0
    """A tag must stay on this long (seconds) before its start is announced."""
    max_event_s: float = 30.0
    """An event is ended after this long (seconds) and restarted if the sound goes on."""


@dataclass(frozen=True)
class TagDecision:
    kind: str  # "start" or "end"
    name: str
    start_sample: int  # stream position where the event began (start of its first hop)
    end_sample: int  # stream position of the decision (end of the last hop inside the event)
    peak_score: float
    mean_score: float
    reason: str = ""  # for "end": "off", "max_length", "flush"

    @property
    def duration_samples(self) -> int:
        return self.end_sample - self.start_sample


class TagSmoother:
    def __init__(self, name: str, cfg: TagSmootherConfig, sample_rate_hz: int, hop_samples: int):
        if cfg.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {cfg.method!r}")
        if not cfg.off_threshold <= cfg.on_threshold:
            raise ValueError(f"off_threshold {cfg.off_threshold} must not exceed on_threshold {cfg.on_threshold}")
        self.name = name
        self.cfg = cfg
        self.hop_samples = hop_samples
        self.min_samples = round(cfg.min_duration_s * sample_rate_hz)
        self.max_samples = max(hop_samples, round(cfg.max_event_s * sample_rate_hz))
        self._window: deque[float] = deque(maxlen=cfg.window_hops)
        self._state = "off"  # "off", "pending" (on but not yet announced), "on"
        self._start = 0
        self._last_end = 0
        self._scores: list[float] = []

    @property
    def active(self) -> bool:
        """True while a start has been announced and its end has not."""
        return self._state == "on"

    def reset(self) -> None:
        self._window.clear()
        self._state = "off"
        self._scores = []

    def smoothed(self) -> float:
        values = np.fromiter(self._window, np.float64)
        return float(np.median(values) if self.cfg.method == "median" else values.mean())

    def update(self, score: float, end_sample: int) -> list[TagDecision]:
        self._window.append(float(score))
        level = self.smoothed()
        if self._state == "off":
            if level < self.cfg.on_threshold:
                return []
            self._begin(end_sample - self.hop_samples)
        elif level < self.cfg.off_threshold:
            decisions = [self._decision("end", "off")] if self._state == "on" else []
            self._state = "off"
            return decisions
        self._scores.append(float(score))
        self._last_end = end_sample
        decisions = []
        if self._state == "pending" and end_sample - self._start >= self.min_samples:
            self._state = "on"
            decisions.append(self._decision("start"))
        if self._state == "on" and end_sample - self._start >= self.max_samples:
            decisions.append(self._decision("end", "max_length"))
            self._begin(end_sample)  # the continuation is announced once it is min_duration_s long
        return decisions

    def flush(self) -> list[TagDecision]:
        """End an announced event now (stream end or reset); forget a pending one."""
        decisions = [self._decision("end", "flush")] if self._state == "on" and self._scores else []
        self.reset()
        return decisions

    def _begin(self, start_sample: int) -> None:
        self._state = "pending"
        self._start = start_sample
        self._scores = []

    def _decision(self, kind: str, reason: str = "") -> TagDecision:
        scores = self._scores or [0.0]
        return TagDecision(kind, self.name, self._start, self._last_end, max(scores), float(np.mean(scores)), reason)
