"""Keyword triggers: one small state machine per keyword over its score sequence, counted in samples.

A trigger fires when at least N of the last M hop scores reach the threshold. It then stays quiet
for ``refractory_s`` and, beyond that, until the N-of-M condition has been false once (re-arming),
so one utterance gives one event however long its scores stay high: never a burst.

A hop may also be closed (the speech and pause gates, wake-word arming): its score then cannot count
towards firing, but still keeps the trigger from re-arming. A gate that closes for a hop or two while
the word's scores stay high (its window moving past the pause before the word) must not split one
utterance into two events.

The hits among the last M scores are counted as they come and go (O(1) per hop). A trigger is
`quiet` when none of them reached the threshold, none is NaN and it is armed: then a score below the
threshold changes nothing that can matter (the scores kept are only read for the max when it fires,
and that max is at or above the threshold), so the scheduler may skip its update.
"""

from __future__ import annotations

import math
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
        self._threshold = cfg.threshold
        self._n = n
        self._recent: deque[float] = deque(maxlen=m)  # scores of open hops, 0 for closed ones
        self._reached: deque[bool] = deque(maxlen=m)  # did the hop's score reach the threshold, open or not
        self._hits = 0  # hops in _recent at or above the threshold (open ones)
        self._reaches = 0  # hops in _reached at or above the threshold (open or closed): the utterance goes on
        self._nans = 0  # NaN scores in _recent
        self._armed = True
        self._last_fire_sample: int | None = None

    @property
    def quiet(self) -> bool:
        """A score below the threshold would leave every decision to come unchanged."""
        return self._reaches == 0 and self._nans == 0 and self._armed

    def reset(self) -> None:
        """Forget everything: the next hop starts a fresh stream."""
        self._recent.clear()
        self._reached.clear()
        self._hits = self._reaches = self._nans = 0
        self._armed = True
        self._last_fire_sample = None

    def update(self, score: float, end_sample: int, open_: bool = True) -> Detection | None:
        """This hop's score, and whether the hop is open (may count towards firing)."""
        score = float(score)
        reached = score >= self._threshold
        if not open_:
            score = 0.0
        recent = self._recent
        if len(recent) == recent.maxlen:
            old = recent[0]
            self._hits -= old >= self._threshold
            self._nans -= math.isnan(old)
            self._reaches -= self._reached[0]
        recent.append(score)
        self._reached.append(reached)
        self._hits += score >= self._threshold
        self._reaches += reached
        self._nans += math.isnan(score)
        if self._reaches < self._n:
            self._armed = True  # the utterance is over: the next one may fire
            return None
        if self._hits < self._n or not self._armed or self._in_refractory(end_sample):
            return None
        self._armed = False
        self._last_fire_sample = end_sample
        return Detection(self.name, max(self._recent), end_sample)

    def _in_refractory(self, end_sample: int) -> bool:
        last = self._last_fire_sample
        return last is not None and end_sample - last < self.refractory_samples
