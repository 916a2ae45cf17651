"""Wake-word arming: a keyword that counts only just after a wake word ("computer ... stop").

A keyword with ``after`` set to another keyword (its wake word) counts only at hops that end within
``after_s`` seconds after that wake word's latest event, and at most once per wake-word event: the
first armed keyword that fires closes the window for all of them. Elsewhere its hops are closed, as the
speech and pause gates close them (they cannot fire; streamd/triggers.py). A command said in running
speech or on television then fires only
if the wake word fired falsely just before it, which is rare (the wake word's own false accepts per
hour, docs/service.md "Wake-word arming").

Positions are those of the run's keyword triggers; one run's triggers only (the wake word must be a
keyword of the same model).
"""

from __future__ import annotations

import numpy as np


class WakeArming:
    """Hop by hop: which triggers are open, given the wake words' events so far."""

    def __init__(self, names: list[str], wakes: list[str | None], after_samples: list[int]):
        """Per trigger, in the run's order: its keyword's name, the wake word it waits for (None: none) and
        how long after that wake word's event it stays open (samples). A wake word without a trigger
        here (disabled) never fires, so its followers never count."""
        self.key = (tuple(names), tuple(wakes), tuple(after_samples))
        slot = {name: k for k, name in enumerate(names)}
        missing = len(names)  # one extra slot: a wake word that is not running
        self.wake_of = np.array([-1 if w is None else slot.get(w, missing) for w in wakes], np.intp)
        self.after_samples = np.asarray(after_samples, np.int64)
        self.waits = self.wake_of >= 0  # bool per trigger
        self._fired_at = np.full(len(names) + 1, -1, np.int64)  # per trigger: its latest opening event's end

    @property
    def any(self) -> bool:
        return bool(self.waits.any())

    def reset(self) -> None:
        self._fired_at[:] = -1

    def open(self, end_sample: int) -> np.ndarray:
        """bool per trigger: may the hop ending at end_sample count? (Triggers that wait for none: True.)"""
        fired = self._fired_at[self.wake_of]  # -1 picks the extra slot, which never fires, for those waiting for none
        since = end_sample - fired
        return ~self.waits | ((fired >= 0) & (since > 0) & (since <= self.after_samples))

    def fired(self, k: int, end_sample: int) -> None:
        """Trigger k fired at the hop ending at end_sample: a follower closes its wake word's window; any
        other keyword (only wake words are read) opens its followers'."""
        if self.waits[k]:
            self._fired_at[self.wake_of[k]] = -1
        else:
            self._fired_at[k] = end_sample
