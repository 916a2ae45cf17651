"""One word, one keyword: keywords of a group are alternatives, and one word publishes one of them.

Words that sound alike ("no", "go", "down") can each reach their own threshold on one utterance: every
trigger fires and a subscriber hears two commands for one word. A keyword with a ``group`` is held when
its trigger fires. The group's first detection opens a window of that keyword's ``group_wait_s``; every
keyword of the group whose trigger fires before the window ends is a candidate too. At the first hop
that ends at or after the window's end, the candidate with the highest score over the open hops from
its own firing on is published, the others are dropped (group_wait_s 0: the first to fire wins, those
of the same hop compared). The event keeps the winner's firing position and score peak, and arrives up
to group_wait_s (and a hop) after that position. The winner's ``refractory_s`` then holds for the whole
group: a keyword of the group that fires within it of the winner's position is the same word heard
late, and is dropped too. Keywords without a group are published as their triggers fire.

Positions are those of the run's keyword triggers (one model on one stream); scores are the model's
probabilities, so candidates compare as the model ranks them, whatever their thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streamd.triggers import Detection


@dataclass
class _Window:
    """An open choice: where it ends, and each candidate's firing position and peak open score since."""

    ends_at: int
    fired_at: dict[int, int] = field(default_factory=dict)  # trigger -> end sample of its firing hop
    peak: dict[int, float] = field(default_factory=dict)  # trigger -> highest open score from then on


class KeywordChoice:
    """Hop by hop: which held detections to publish, given the triggers' scores since they fired."""

    def __init__(self, names: list[str], groups: list[str | None], wait_samples: list[int],
                 refractory_samples: list[int]):
        """Per trigger, in the run's order: its keyword's name, its group (None: none), how long its
        detection waits for a better one of its group and, once published, keeps the group quiet (samples)."""
        self.key = (tuple(names), tuple(groups), tuple(wait_samples), tuple(refractory_samples))
        self.names = names
        slot: dict[str, int] = {}
        self.group_of = np.array([-1 if g is None else slot.setdefault(g, len(slot)) for g in groups], np.intp)
        self.wait_samples = list(wait_samples)
        self.refractory_samples = list(refractory_samples)
        self._open: dict[int, _Window] = {}  # group -> its open window
        self._quiet_until: dict[int, int] = {}  # group -> end of its last event's refractory period (sample)

    @property
    def any(self) -> bool:
        return bool((self.group_of >= 0).any())

    @property
    def pending(self) -> bool:
        return bool(self._open)

    def holds(self, k: int) -> bool:
        """Is trigger k's detection held for a choice (it has a group)?"""
        return bool(self.group_of[k] >= 0)

    def hold(self, k: int, detection: Detection) -> None:
        """Trigger k (grouped) fired: a candidate of its group's open window, the opener of a new one, or,
        within the refractory period of the group's last event, dropped."""
        group = int(self.group_of[k])
        window = self._open.get(group)
        if window is None:
            if detection.end_sample < self._quiet_until.get(group, 0):
                return
            window = self._open[group] = _Window(detection.end_sample + self.wait_samples[k])
        window.fired_at.setdefault(k, detection.end_sample)
        window.peak[k] = max(window.peak.get(k, detection.score), detection.score)

    def hop(self, scores: np.ndarray, opened: np.ndarray, end_sample: int) -> list[Detection]:
        """This hop's scores and open flags per trigger (after the triggers were updated and any that
        fired were held): the candidates' peaks grow, and the windows that end here are decided."""
        decided = []
        for group, window in list(self._open.items()):
            for k in window.peak:
                if opened[k] and scores[k] > window.peak[k]:  # NaN never raises a peak
                    window.peak[k] = float(scores[k])
            if end_sample >= window.ends_at:
                decided.append(self._decide(group))
        return decided

    def flush(self) -> list[Detection]:
        """Decide every open window now (the stream ended, was reset, or the settings changed)."""
        return [self._decide(group) for group in list(self._open)]

    def reset(self) -> None:
        self._open.clear()
        self._quiet_until.clear()

    def _decide(self, group: int) -> Detection:
        window = self._open.pop(group)
        k = max(window.peak, key=window.peak.get)  # the first to fire wins a tie (dicts keep insertion order)
        self._quiet_until[group] = window.fired_at[k] + self.refractory_samples[k]
        return Detection(self.names[k], window.peak[k], window.fired_at[k])
