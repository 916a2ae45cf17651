"""Keyword triggers: one small state machine per keyword over its score sequence, counted in samples.

A trigger fires when at least N of the last M hop scores reach the threshold. It then stays quiet
for ``refractory_s`` and, beyond that, until the N-of-M condition has been false once (re-arming),
so one utterance gives one event however long its scores stay high: never a burst.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class KeywordTriggerConfig:
    threshold: float
    """Score (probability, 0..1) a hop must reach to count."""
    n_of_m: tuple[int, int] = (1, 1)
    """Fire when N of the last M hops reach the threshold (hops)."""
    refractory_s: float = 1.0
    """After an event, no further event for this long (seconds of stream time)."""


@dataclass(frozen=True)
class Detection:
    name: str
    score: float  # the highest score among the last M hops
    end_sample: int  # stream position just after the hop that fired


class KeywordTrigger:
    def __init__(self, name: str, cfg: KeywordTriggerConfig, sample_rate_hz: int):
        n, m = cfg.n_of_m
        if not 1 <= n <= m:
            raise ValueError(f"n_of_m must satisfy 1 <= N <= M, got {cfg.n_of_m}")
        self.name = name
        self.cfg = cfg
        self.refractory_samples = round(cfg.refractory_s * sample_rate_hz)
        self._recent: deque[float] = deque(maxlen=m)
        self._armed = True
        self._last_fire_sample: int | None = None

    def reset(self) -> None:
        """Forget everything: the next hop starts a fresh stream."""
        self._recent.clear()
        self._armed = True
        self._last_fire_sample = None

    def update(self, score: float, end_sample: int) -> Detection | None:
        self._recent.append(float(score))
        hits = sum(s >= self.cfg.threshold for s in self._recent)
        if hits < self.cfg.n_of_m[0]:
            self._armed = True  # the utterance is over: the next one may fire
            return None
        if not self._armed or self._in_refractory(end_sample):
            return None
        self._armed = False
        self._last_fire_sample = end_sample
        return Detection(self.name, max(self._recent), end_sample)

    def _in_refractory(self, end_sample: int) -> bool:
        last = self._last_fire_sample
        return last is not None and end_sample - last < self.refractory_samples
