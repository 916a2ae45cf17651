"""The part every Source shares: mix-down, sanitising and resampling into the ring, status notes, waiting.

Subclasses (microphone, file, stdin) decide where blocks come from and on which thread (a microphone's
ring converts its queued blocks when read: `_make_ring`, streamd.lazyring); they all convert through
`_to_model_rate` (and `_deliver`), so the samples in the ring do not depend on the kind of source or on
its block sizes.

Sanitising: a single NaN reaching a model's state would silence that stream for good, and a float
file or a driver can deliver NaN, inf or samples beyond full scale. Before resampling, non-finite
samples become 0 and the rest are clipped to [-1, 1]; both are counted (`counters()`), and each
episode of bad input gets one StatusNote ("bad_samples"). The resampler can ring slightly past full
scale on clipped input, so its output is clipped to [-1, 1] too (not counted: the input was fine).
"""

from __future__ import annotations

import collections
import threading

import numpy as np

from streamd.resample import StreamResampler, mix_down
from streamd.ring import RingBuffer
from streamd.source import StatusNote

MAX_PENDING_NOTES = 256  # notes the main thread has not drained yet; older ones are dropped
BAD_EPISODE_GAP_S = 2.0  # bad samples after this much clean input (s of input) start a new episode


class RingSource:
    realtime = True

    def __init__(self, name: str, sample_rate_hz: int, ring_seconds: float, channels: list[int] | None):
        self.name = name
        self.sample_rate_hz = int(sample_rate_hz)
        self.ring = self._make_ring(max(1, round(ring_seconds * self.sample_rate_hz)))
        self.channels = channels
        self._resampler: StreamResampler | None = None
        self._in_rate_hz = self.sample_rate_hz
        # sanitising counters, in input frames after mix-down (written by the delivering thread)
        self._input_frames = 0
        self._nonfinite_samples = 0
        self._clipped_samples = 0
        self._bad_episodes = 0
        self._last_bad_frame: int | None = None  # input frame index just after the last bad block
        self._notes: collections.deque[StatusNote] = collections.deque(maxlen=MAX_PENDING_NOTES)
        self._notes_lock = threading.Lock()
        self._finished = threading.Event()
        self._seen_end_index = 0

    def _make_ring(self, capacity_samples: int) -> RingBuffer:
        return RingBuffer(capacity_samples)

    # -- delivery (called from the source's own thread, or from pump) --
    def _set_input_rate(self, in_rate_hz: int) -> None:
        """Start a new resampling stream (at start and after a device is reopened)."""
        self._in_rate_hz = int(in_rate_hz)
        self._resampler = StreamResampler(in_rate_hz, self.sample_rate_hz)

    def _deliver(self, block: np.ndarray) -> int:
        """(frames[, channels]) at the input rate -> ring; returns samples written."""
        out = self._to_model_rate(block)
        self.ring.write(out)
        return len(out)

    def _to_model_rate(self, block: np.ndarray) -> np.ndarray:
        """(frames[, channels]) at the input rate -> mono float32 in [-1, 1] at the model rate."""
        out = self._resampler.process(self._sanitise(mix_down(block, self.channels)))
        if self._resampler.passthrough:  # sanitised input is already within [-1, 1]
            return out
        return np.clip(out, -1.0, 1.0, out=out)

    def _resampler_tail(self) -> np.ndarray:
        out = self._resampler.flush()
        return np.clip(out, -1.0, 1.0, out=out)

    def _sanitise(self, mono: np.ndarray) -> np.ndarray:
        """Non-finite -> 0, then clip to [-1, 1]; count both; one note per episode of bad input."""
        start_frame = self._input_frames
        self._input_frames += len(mono)
        # The usual case, in two direct ufunc calls (numpy's Python-level wrappers, np.max or np.errstate,
        # cost 5-15 us each on a thread just woken): the peak is NaN for NaN input, inf for inf; both fail.
        if len(mono) == 0 or np.maximum.reduce(np.abs(mono)) <= 1.0:
            return mono
        nonfinite = ~np.isfinite(mono)
        n_nonfinite = int(np.count_nonzero(nonfinite))
        if n_nonfinite:
            mono = np.where(nonfinite, 0.0, mono)
        over = np.abs(mono) > 1.0
        n_clipped = int(np.count_nonzero(over))
        first_bad_frame = start_frame + int(np.argmax(nonfinite | over))
        mono = np.clip(mono, -1.0, 1.0)
        self._nonfinite_samples += n_nonfinite
        self._clipped_samples += n_clipped
        gap_frames = BAD_EPISODE_GAP_S * self._in_rate_hz
        if self._last_bad_frame is None or first_bad_frame - self._last_bad_frame >= gap_frames:
            self._bad_episodes += 1
            self._note("bad_samples", f"{self.name}: bad input samples: {n_nonfinite} non-finite set to 0, "
                       f"{n_clipped} beyond full scale clipped (more are counted, not reported, until "
                       f"{BAD_EPISODE_GAP_S:g} s of clean input)", nonfinite_samples=n_nonfinite,
                       clipped_samples=n_clipped, input_frame=first_bad_frame, episodes=self._bad_episodes)
        self._last_bad_frame = self._input_frames
        return mono

    def _sanitise_counters(self) -> dict:
        return {"nonfinite_samples": self._nonfinite_samples, "clipped_samples": self._clipped_samples,
                "bad_sample_episodes": self._bad_episodes}

    def _finish(self) -> None:
        """End of input: write the resampler's tail, mark finished, wake the reader."""
        if self._finished.is_set():
            return
        if self._resampler is not None:
            self.ring.write(self._resampler_tail())
        self._finished.set()
        self._note("source_finished", f"{self.name}: end of input at sample {self.ring.end_index}",
                   end_index=self.ring.end_index)
        self.ring.wake()

    def _note(self, kind: str, message: str, **detail: object) -> None:
        with self._notes_lock:
            self._notes.append(StatusNote(kind, message, dict(detail, stream=self.name)))

    # -- the Source protocol, reader side --
    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def wait_for_data(self, timeout_s: float) -> None:
        """Return when samples arrived since the last call, the source finished, or timeout_s passed."""
        if not self.finished:
            self.ring.wait_beyond(self._seen_end_index, timeout_s)
        self._seen_end_index = self.ring.end_index

    def drain_notes(self) -> list[StatusNote]:
        with self._notes_lock:
            notes = list(self._notes)
            self._notes.clear()
        return notes

    def pump(self, max_samples: int) -> int:
        raise RuntimeError(f"{type(self).__name__} {self.name!r} is real-time: it fills its ring itself")

    def counters(self) -> dict:
        return {"overflows": 0, "dropped_samples": 0, "reopens": 0, "device": None, **self._sanitise_counters()}


class SourceError(Exception):
    """A source cannot be opened as asked (bad spec, missing or unreadable file, bad channels)."""
