"""The speech gate: a keyword hop counts only if the model heard speech just before it.

A keyword model fires on the hops that follow a word, and a short impulsive sound (a door knock, a
dog's bark, a drum) can look like a short word to it. The same model also scores `speech`; a
keyword hop is kept only where that score reached ``gate`` in the last ``window_s`` of audio
(long enough to span the word that the keyword hop follows), and is scored 0 elsewhere. Measured on
the default model: no validation keyword clip lost, nor with the audio 20 dB quieter, while most
false accepts on non-speech sounds and music go (docs/service.md, "Speech gate").

The pause gate is the speech gate's other half: a keyword hop counts only if the speech score fell
below ``pause`` (a pause) somewhere in the hops that end ``pause_s`` (from, to) seconds before it, a
window that starts before the word the hop follows. A keyword said on its own, after silence or a
pause in talk, keeps it; the same word inside running speech ("I stopped by", "going downtown") does
not. Hops before the stream began count as a pause. Measured on the default model at config.yaml's
thresholds: no validation clip lost, a keyword said 0.2 s or more after other speech heard within a
point of its rate without the gate, and in held-out synthetic talk full of near-misses a third or
fewer of the false accepts left (docs/service.md, "Pause gate").

``gate_scores`` and ``pause_scores`` do it over a whole score sequence (the evaluation); ``SpeechGate``
hop by hop (the service). Both give the same numbers.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np


def window_hops(window_s: float, hop_samples: int, sample_rate_hz: int) -> int:
    """Hops that span window_s at this hop (rounded up), at least 1: how far a keyword hop looks back
    for speech (its own hop included), and a tag's smoothing window given in seconds."""
    return max(1, math.ceil(window_s * sample_rate_hz / hop_samples - 1e-9))


def pause_window_hops(pause_s: tuple[float, float], hop_samples: int, sample_rate_hz: int) -> tuple[int, int]:
    """(near, far): the hops back, counted from the keyword hop (0), whose ends lie pause_s[0] to
    pause_s[1] seconds before its end, rounded outwards, as window_hops rounds."""
    near = math.ceil(pause_s[0] * sample_rate_hz / hop_samples - 1e-9)
    return near, max(near, math.ceil(pause_s[1] * sample_rate_hz / hop_samples - 1e-9))


def gate_scores(keyword: np.ndarray, speech: np.ndarray, gate: float, hops: int) -> np.ndarray:
    """keyword scores [n_hops] with every hop set to 0 where speech [n_hops] stayed below gate
    over that hop and the hops - 1 before it; gate <= 0 leaves them as they are."""
    if gate <= 0:
        return keyword
    padded = np.concatenate([np.full(hops - 1, -np.inf), np.asarray(speech, np.float64)])
    recent = np.lib.stride_tricks.sliding_window_view(padded, hops).max(axis=1)
    return np.where(recent >= gate, keyword, 0.0).astype(keyword.dtype)


def pause_scores(keyword: np.ndarray, speech: np.ndarray, pause: float, near: int, far: int) -> np.ndarray:
    """keyword scores [n_hops] with every hop set to 0 where speech [n_hops] stayed at or above pause
    (or NaN) in each of the hops near..far before it; hops before the sequence count as a pause;
    pause <= 0 leaves them as they are."""
    if pause <= 0:
        return keyword
    low = np.concatenate([np.ones(far, bool), np.asarray(speech, np.float64) < pause])
    # hop i reads low[i + far - k] for k = far..near: the window of far - near + 1 starting at i
    found = np.lib.stride_tricks.sliding_window_view(low, far - near + 1).any(axis=1)[: len(keyword)]
    return np.where(found, keyword, 0.0).astype(keyword.dtype)


class SpeechGate:
    """Hop by hop: which keywords are open, each with its own speech gate and window (in hops) and,
    optionally, its own pause level and (near, far) window (hops back)."""

    def __init__(self, gates: np.ndarray, hops: np.ndarray, pauses: np.ndarray | None = None,
                 pause_windows: np.ndarray | None = None):
        self.gates = np.asarray(gates, np.float64)
        self.hops = np.asarray(hops, np.intp)
        self.pauses = np.zeros(len(self.gates)) if pauses is None else np.asarray(pauses, np.float64)
        self.pause_windows = (np.ones((len(self.gates), 2), np.intp) if pause_windows is None
                              else np.asarray(pause_windows, np.intp).reshape(-1, 2))
        self._pausing = np.flatnonzero(self.pauses > 0)  # keywords with a pause gate
        longest = max(int(self.hops.max(initial=1)), int(self.pause_windows[self._pausing, 1].max(initial=0)) + 1)
        self._recent: deque[float] = deque(maxlen=longest)

    def reset(self) -> None:
        self._recent.clear()

    def push(self, speech: float) -> None:
        """This hop's speech score (every hop, so that the window is right when it is read)."""
        self._recent.append(float(speech))

    def open(self) -> np.ndarray:
        """bool per keyword, after the latest push: may this hop's score count?"""
        newest_first = np.fromiter(reversed(self._recent), np.float64, len(self._recent))
        running_max = np.maximum.accumulate(newest_first)  # [k]: max over the newest k + 1 hops
        recent = running_max[np.minimum(self.hops, len(running_max)) - 1]
        opened = (self.gates <= 0) | (recent >= self.gates)
        for k in self._pausing:
            near, far = self.pause_windows[k]
            # the window reaches back before the first hop (a pause), or a hop in it was below the level
            opened[k] &= far >= len(newest_first) or bool((newest_first[near:far + 1] < self.pauses[k]).any())
        return opened
