"""The speech gate: a keyword hop counts only if the model heard speech just before it.

A keyword model fires on the hops that follow a word, and a short impulsive sound (a door knock, a
dog's bark, a drum) can look like a short word to it. The same model also scores `speech`; a
keyword hop is kept only where that score reached ``gate`` in the last ``window_s`` of audio
(long enough to span the word that the keyword hop follows), and is scored 0 elsewhere. Measured on
the default model: no validation keyword clip lost, nor with the audio 20 dB quieter, while most
false accepts on non-speech sounds and music go (docs/service.md, "Speech gate").

The pause gate is the speech gate's other half: a keyword hop counts only if there was a pause
somewhere in the hops that end ``pause_s`` (from, to) seconds before it, a window that starts before
the word the hop follows. A pause is a hop whose speech score fell below ``pause``, or ``LEVEL_PAUSE_S``
of audio at least ``drop_db`` quieter than the word's loudest hop: a television or another room
talking on under the speaker keeps the speech score up, but not the level. A keyword said on its own,
after silence or a pause in talk, keeps it; the same word inside running speech ("I stopped by",
"going downtown") does not. Hops before the stream began count as a pause. Measured on the default
model (docs/service.md, "Pause gate").

``gate_scores`` and ``pause_scores`` do it over a whole score sequence (the evaluation); ``SpeechGate``
hop by hop (the service). Both give the same numbers.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

LEVEL_PAUSE_S = 0.32  # a pause by level lasts this long: one hop's dip inside a sentence is not one


def window_hops(window_s: float, hop_samples: int, sample_rate_hz: int) -> int:
    """Hops that span window_s at this hop (rounded up), at least 1: how far a keyword hop looks back
    for speech (its own hop included), and a tag's smoothing window given in seconds."""
    return max(1, math.ceil(window_s * sample_rate_hz / hop_samples - 1e-9))


def pause_window_hops(pause_s: tuple[float, float], hop_samples: int, sample_rate_hz: int) -> tuple[int, int]:
    """(near, far): the hops back, counted from the keyword hop (0), whose ends lie pause_s[0] to
    pause_s[1] seconds before its end, rounded outwards, as window_hops rounds."""
    near = math.ceil(pause_s[0] * sample_rate_hz / hop_samples - 1e-9)
    return near, max(near, math.ceil(pause_s[1] * sample_rate_hz / hop_samples - 1e-9))


def _windows(x: np.ndarray, pad: int, fill: float, width: int) -> np.ndarray:
    """[len(x) + pad - width + 1, width]: x with pad fill values in front, in windows of width."""
    padded = np.concatenate([np.full(pad, fill), np.asarray(x, np.float64)])
    return np.lib.stride_tricks.sliding_window_view(padded, width)


def gate_scores(keyword: np.ndarray, speech: np.ndarray, gate: float, hops: int) -> np.ndarray:
    """keyword scores [n_hops] with every hop set to 0 where speech [n_hops] stayed below gate
    over that hop and the hops - 1 before it; gate <= 0 leaves them as they are."""
    if gate <= 0:
        return keyword
    recent = _windows(speech, hops - 1, -np.inf, hops).max(axis=1)
    return np.where(recent >= gate, keyword, 0.0).astype(keyword.dtype)


def level_db(audio: np.ndarray) -> float:
    """A hop's level: mean power in dB (re full scale 1.0), -100 for silence."""
    return 10.0 * math.log10(float(np.dot(audio, audio)) / max(1, len(audio)) + 1e-10)


def pause_scores(keyword: np.ndarray, speech: np.ndarray, pause: float, near: int, far: int,
                 levels_db: np.ndarray | None = None, drop_db: float = 0.0, level_hops: int = 1) -> np.ndarray:
    """keyword scores [n_hops] with every hop set to 0 where none of the hops near..far before it was a
    pause: speech [n_hops] below pause, or (drop_db > 0, levels_db [n_hops] given) level_hops hops in a
    row ending there, each at least drop_db below the loudest of the keyword hop and the near - 1 before
    it (the word). Hops before the sequence count as a pause; NaN speech is none; pause <= 0 leaves the
    scores as they are."""
    if pause <= 0:
        return keyword
    n = len(keyword)
    # hop i reads hop i - k for k = far..near: the window of far - near + 1 starting at padded index i
    quiet = np.asarray(speech, np.float64) < pause
    found = _windows(quiet, far, 1.0, far - near + 1).any(axis=1)[:n]
    if levels_db is not None and drop_db > 0:
        word_db = _windows(levels_db, max(near, 1) - 1, -np.inf, max(near, 1)).max(axis=1)[:n]
        run_db = _windows(levels_db, level_hops - 1, -np.inf, level_hops).max(axis=1)  # a run's loudest hop
        found |= _windows(run_db, far, -np.inf, far - near + 1).min(axis=1)[:n] <= word_db - drop_db
    return np.where(found, keyword, 0.0).astype(keyword.dtype)


@dataclass(frozen=True)
class KeywordGate:
    """One keyword's speech and pause gates at one hop size, in hops: what the service's scheduler and the
    evaluation both build from a keyword's settings (`of`)."""

    speech: float  # speech gate (probability; 0 = off)
    speech_hops: int  # its window, the keyword hop included
    pause: float  # pause gate (probability; 0 = off)
    near: int  # its window, hops back from the keyword hop
    far: int
    drop_db: float  # a pause by level: this much under the word (dB; 0 = the speech score alone)
    level_hops: int  # for this many hops in a row (LEVEL_PAUSE_S)

    @classmethod
    def of(cls, settings, hop_samples: int, sample_rate_hz: int) -> KeywordGate:
        """From a keyword's effective settings (streamd.config.KeywordDefaults)."""
        near, far = pause_window_hops(settings.pause_before_s, hop_samples, sample_rate_hz)
        return cls(settings.speech_gate, window_hops(settings.speech_gate_s, hop_samples, sample_rate_hz),
                   settings.pause_before, near, far, settings.pause_drop_db,
                   window_hops(LEVEL_PAUSE_S, hop_samples, sample_rate_hz))

    @property
    def gates(self) -> bool:
        return self.speech > 0 or self.pause > 0

    def apply(self, keyword: np.ndarray, speech: np.ndarray, levels_db: np.ndarray | None = None) -> np.ndarray:
        """keyword scores [n_hops] through both gates over a whole sequence, as SpeechGate does hop by hop."""
        gated = gate_scores(keyword, speech, self.speech, self.speech_hops)
        return pause_scores(gated, speech, self.pause, self.near, self.far, levels_db, self.drop_db, self.level_hops)

    def opened(self, speech: np.ndarray, levels_db: np.ndarray | None = None) -> np.ndarray:
        """bool [n_hops]: the hops both gates leave open over a whole sequence (SpeechGate.open, hop by hop)."""
        return self.apply(np.ones(len(speech)), speech, levels_db) > 0


class SpeechGate:
    """Hop by hop: which keywords are open, each with its own speech gate and window (in hops) and,
    optionally, its own pause gate: speech level, (near, far) window (hops back) and level drop (dB)."""

    def __init__(self, gates: np.ndarray, hops: np.ndarray, pauses: np.ndarray | None = None,
                 pause_windows: np.ndarray | None = None, drops_db: np.ndarray | None = None, level_hops: int = 1):
        self.gates = np.asarray(gates, np.float64)
        self.hops = np.asarray(hops, np.intp)
        k = len(self.gates)
        self.pauses = np.zeros(k) if pauses is None else np.asarray(pauses, np.float64)
        self.pause_windows = (np.ones((k, 2), np.intp) if pause_windows is None
                              else np.asarray(pause_windows, np.intp).reshape(-1, 2))
        self.drops_db = np.zeros(k) if drops_db is None else np.asarray(drops_db, np.float64)
        self.level_hops = level_hops
        self._pausing = np.flatnonzero(self.pauses > 0)  # keywords with a pause gate
        self.uses_levels = bool((self.drops_db[self._pausing] > 0).any())  # if not, push needs no level
        far = int(self.pause_windows[self._pausing, 1].max(initial=0))
        longest = max(int(self.hops.max(initial=1)), far + level_hops)
        self._recent: deque[float] = deque(maxlen=longest)
        self._levels: deque[float] = deque(maxlen=longest)

    @classmethod
    def of(cls, gates: list[KeywordGate]) -> SpeechGate:
        """One per keyword, all at one hop size (so one level_hops)."""
        return cls(np.array([g.speech for g in gates]), np.array([g.speech_hops for g in gates]),
                   np.array([g.pause for g in gates]), np.array([(g.near, g.far) for g in gates]),
                   np.array([g.drop_db for g in gates]), gates[0].level_hops if gates else 1)


    def reset(self) -> None:
        self._recent.clear()
        self._levels.clear()

    def push(self, speech: float, level_db: float = -100.0) -> None:
        """This hop's speech score and audio level (every hop, so that the windows are right when read)."""
        self._recent.append(float(speech))
        self._levels.append(float(level_db))

    def open(self) -> np.ndarray:
        """bool per keyword, after the latest push: may this hop's score count?"""
        newest_first = np.fromiter(reversed(self._recent), np.float64, len(self._recent))
        running_max = np.maximum.accumulate(newest_first)  # [k]: max over the newest k + 1 hops
        recent = running_max[np.minimum(self.hops, len(running_max)) - 1]
        opened = (self.gates <= 0) | (recent >= self.gates)
        if len(self._pausing):
            levels = np.fromiter(reversed(self._levels), np.float64, len(self._levels)) if self.uses_levels else None
            for k in self._pausing:
                opened[k] &= self._paused(k, newest_first, levels)
        return opened

    def _paused(self, k: int, speech: np.ndarray, levels: np.ndarray | None) -> bool:
        """Was there a pause in keyword k's window? speech and levels newest first."""
        near, far = self.pause_windows[k]
        if far >= len(speech) or (speech[near:far + 1] < self.pauses[k]).any():
            return True  # the window reaches back before the first hop, or the speech score fell
        if levels is None or self.drops_db[k] <= 0:
            return False
        quiet_db = levels[:max(near, 1)].max() - self.drops_db[k]
        return any(levels[t:t + self.level_hops].max() <= quiet_db for t in range(near, far + 1))
