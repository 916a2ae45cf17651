"""Keywords said after speech: each word, trimmed, follows the last LEAD_S of a validation coffee order after
a silent pause, with TAIL_S of silence after it, over the kitchen recording BED_DB below the word (the same
stretch of it under the word whatever the pause). scripts/pause_gate.py asks whether the word is heard there,
scripts/double_fires.py what the service publishes."""

from __future__ import annotations

import numpy as np

from export.data.manifest import Clip
from export.evaluation.clips import in_group
from export.evaluation.streaming import Scorer, active_region, word_only

PAUSES_S = (0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0)
LEAD_S = 3.0  # speech before each word (s)
TAIL_S = 0.8  # silence after it (s)
BED_DB = -20.0  # the kitchen recording against the word (dB)
WORD_MARGIN_S = 0.03  # kept around the word's active region (s)


def after_speech(word: np.ndarray, lead: np.ndarray, bed: np.ndarray, pause_s: float, rate: int) -> np.ndarray:
    """lead, pause_s of silence, word and TAIL_S of silence, over bed BED_DB below the word; the word on the
    same stretch of bed whatever the pause (up to max(PAUSES_S))."""
    silence = np.zeros(round(pause_s * rate), np.float32)
    stream = np.concatenate([lead, silence, word, np.zeros(round(TAIL_S * rate), np.float32)])
    start = round((LEAD_S + max(PAUSES_S)) * rate) - len(lead) - len(silence)
    bed = bed[start: start + len(stream)]
    return stream + bed * np.sqrt(np.mean(word ** 2) / np.mean(bed ** 2)) * 10 ** (BED_DB / 20)


class SpeechBefore:
    """The validation coffee orders and the kitchen recording of a split; each clip asked for gets the next
    order of a seeded draw, so the same clips in the same order meet the same speech in every script."""

    def __init__(self, scorer: Scorer, clips: list[Clip], groups: dict, seed: int = 0):
        self.scorer = scorer
        self.orders = [c for c in clips if in_group(c, groups, "speech")]
        self.kitchen = scorer.audio(next(c for c in clips if c.path.name == "kitchen.flac"))
        self.rng = np.random.default_rng(seed)

    def word_and_lead(self, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
        """The clip's word (its active region) and the last LEAD_S of the next drawn order's speech."""
        rate = self.scorer.sample_rate_hz
        word = word_only(self.scorer.audio(clip), round(WORD_MARGIN_S * rate))
        order = self.scorer.audio(self.orders[self.rng.integers(len(self.orders))])
        order_end = active_region(order)[1]
        return word, order[max(0, order_end - round(LEAD_S * rate)): order_end]

    def stream(self, word: np.ndarray, lead: np.ndarray, pause_s: float) -> np.ndarray:
        return after_speech(word, lead, self.kitchen, pause_s, self.scorer.sample_rate_hz)
