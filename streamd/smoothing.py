"""Tag smoothing: per label, turn a score per hop into start and end decisions.

The score is smoothed over a window of hops (moving mean or median). A tag turns on when the
smoothed score reaches ``on_threshold`` and stays on until it falls below ``off_threshold``
(hysteresis). It is only announced (``start``) once it has been on for ``min_duration_s``; a tag
that stays on for ``max_event_s`` is ended there and, if still on, starts again at once, so a
subscriber hears about a long sound at least every ``max_event_s``. An announced event that turns off
ends only once it has stayed off for ``hold_s``: a sound that comes back within it (an alarm's next beep
group, a dog's next bark) continues the same event, and its end is published ``hold_s`` late, with the
end of its last hop that was on. Peak and mean are of the raw scores of the hops inside the event.
Everything is counted in samples.

Cost per hop is O(1) for the mean (a running sum) and O(window) in C for the median (a sorted copy
kept with bisect), never a numpy call: with every tag of a model enabled the smoothers run once per
label per hop. Decisions are exactly those of the plain definition (`smoothed()`): where the running
sum's level is within rounding distance of a threshold, the plain mean or median decides.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

METHODS = ("mean", "median")
NEAR_THRESHOLD = 1e-9  # a running-sum level this close to a threshold is recomputed the plain way
RESUM_EVERY = 4096  # updates between exact recomputations of the running sum (bounds its drift)


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
    hold_s: float = 0.0
    """An announced event ends only once it has been off this long (seconds); back on (on_threshold)
    within it, it goes on as the same event."""


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
        self.hold_samples = round(cfg.hold_s * sample_rate_hz)
        self._window: deque[float] = deque(maxlen=cfg.window_hops)
        self._median = cfg.method == "median"
        self._sorted: list[float] = []  # the window, sorted (median)
        self._sum = 0.0  # running sum of the window (mean)
        self._updates = 0  # since the running sum was last recomputed
        self._nonfinite = 0  # NaN or inf in the window: then the plain definition decides
        self._cold_below = cfg.on_threshold - NEAR_THRESHOLD * max(1.0, abs(cfg.on_threshold))
        self._state = "off"  # "off", "pending" (on but not yet announced), "on", "holding" (announced, now off)
        self._start = 0
        self._last_end = 0  # end of the event's last hop that was on
        self._scores: list[float] = []
        self._held: list[float] = []  # off hops while holding, the event's if it comes back; empty otherwise

    @property
    def active(self) -> bool:
        """True while a start has been announced and its end has not."""
        return self._state in ("on", "holding")

    @property
    def dormant(self) -> bool:
        """Off, and every score in the window is clearly below on_threshold: a hop whose score is too
        cannot change anything but the window (see `refill`)."""
        return self._state == "off" and all(v < self._cold_below for v in self._window)

    @property
    def cold_below(self) -> float:
        """A dormant smoother stays dormant on a score below this."""
        return self._cold_below

    def reset(self) -> None:
        self._window.clear()
        self._sorted = []
        self._sum = 0.0
        self._updates = 0
        self._nonfinite = 0
        self._state = "off"
        self._scores = []
        self._held = []

    def refill(self, window: list[float]) -> None:
        """Replace the window by these scores (oldest first): after hops skipped while dormant."""
        self._window.clear()
        self._window.extend(float(v) for v in window)
        self._resync()

    def smoothed(self) -> float:
        """The plain definition: mean or median of the window."""
        values = np.fromiter(self._window, np.float64)
        return float(np.median(values) if self._median else values.mean())

    def update(self, score: float, end_sample: int) -> list[TagDecision]:
        self._push(float(score))
        if self._state == "off":
            if self._level_below(self.cfg.on_threshold):
                return []
            self._begin(end_sample - self.hop_samples)
        elif self._state == "holding":
            if self._level_below(self.cfg.on_threshold):
                return self._hold(score, end_sample)
            self._state = "on"  # back within hold_s: the same event, the hops it was off included
            self._scores += self._held
            self._held = []
        elif self._level_below(self.cfg.off_threshold):
            if self._state == "pending":  # never announced: nothing to end
                self._state = "off"
                return []
            self._state = "holding"
            return self._hold(score, end_sample)
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
        decisions = [self._decision("end", "flush")] if self.active and self._scores else []
        self.reset()
        return decisions

    def _hold(self, score: float, end_sample: int) -> list[TagDecision]:
        """An off hop of an announced event: the event ends once off for hold_s (at once without a hold)."""
        if end_sample - self._last_end < self.hold_samples:
            self._held.append(float(score))
            return []
        self._state = "off"
        self._held = []
        return [self._decision("end", "off")]

    def _push(self, score: float) -> None:
        window = self._window
        old = window[0] if len(window) == window.maxlen else None
        window.append(score)
        if self._nonfinite or not math.isfinite(score) or (old is not None and not math.isfinite(old)):
            self._resync()  # rare: NaN or inf in the window; the plain definition decides meanwhile
            return
        if self._median:
            if old is not None:
                del self._sorted[bisect.bisect_left(self._sorted, old)]
            bisect.insort(self._sorted, score)
        else:
            self._sum = self._sum + score - (old if old is not None else 0.0)
            self._updates += 1
            if self._updates >= RESUM_EVERY:
                self._resync()

    def _resync(self) -> None:
        self._nonfinite = sum(not math.isfinite(v) for v in self._window)
        self._sorted = sorted(self._window) if self._median and not self._nonfinite else []
        self._sum = math.fsum(self._window) if not self._nonfinite else 0.0
        self._updates = 0

    def _level_below(self, threshold: float) -> bool:
        """smoothed() < threshold, without computing smoothed() unless the fast level is too close to call."""
        if self._nonfinite:
            return self.smoothed() < threshold
        n = len(self._window)
        if self._median:
            s, mid = self._sorted, n // 2
            level = s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2
        else:
            level = self._sum / n
        if abs(level - threshold) > NEAR_THRESHOLD * max(1.0, abs(threshold)):
            return level < threshold
        return self.smoothed() < threshold

    def _begin(self, start_sample: int) -> None:
        self._state = "pending"
        self._start = start_sample
        self._scores = []

    def _decision(self, kind: str, reason: str = "") -> TagDecision:
        scores = self._scores or [0.0]
        with np.errstate(invalid="ignore"):  # +inf and -inf average to NaN, quietly: only the tests feed them (input is sanitised)
            mean = float(np.mean(scores))
        return TagDecision(kind, self.name, self._start, self._last_end, max(scores), mean, reason)
