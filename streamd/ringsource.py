"""The part every Source shares: mix-down and resampling into the ring, status notes, waiting.

Subclasses (microphone, file, stdin) decide where blocks come from and on which thread; they all
deliver through `_deliver`, so the samples in the ring do not depend on the kind of source or on its
block sizes.
"""

from __future__ import annotations

import collections
import threading

import numpy as np

from streamd.resample import StreamResampler, mix_down
from streamd.ring import RingBuffer
from streamd.source import StatusNote

MAX_PENDING_NOTES = 256  # notes the main thread has not drained yet; older ones are dropped


class RingSource:
    realtime = True

    def __init__(self, name: str, sample_rate_hz: int, ring_seconds: float, channels: list[int] | None):
        self.name = name
        self.sample_rate_hz = int(sample_rate_hz)
        self.ring = RingBuffer(max(1, round(ring_seconds * self.sample_rate_hz)))
        self.channels = channels
        self._resampler: StreamResampler | None = None
        self._notes: collections.deque[StatusNote] = collections.deque(maxlen=MAX_PENDING_NOTES)
        self._notes_lock = threading.Lock()
        self._finished = threading.Event()
        self._seen_end_index = 0

    # -- delivery (called from the source's own thread, or from pump) --
    def _set_input_rate(self, in_rate_hz: int) -> None:
        """Start a new resampling stream (at start and after a device is reopened)."""
        self._resampler = StreamResampler(in_rate_hz, self.sample_rate_hz)

    def _deliver(self, block: np.ndarray) -> int:
        """(frames[, channels]) at the input rate -> ring; returns samples written."""
        out = self._resampler.process(mix_down(block, self.channels))
        self.ring.write(out)
        return len(out)

    def _finish(self) -> None:
        """End of input: write the resampler's tail, mark finished, wake the reader."""
        if self._finished.is_set():
            return
        if self._resampler is not None:
            self.ring.write(self._resampler.flush())
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
        return {"overflows": 0, "dropped_samples": 0, "reopens": 0, "device": None}


class SourceError(Exception):
    """A source cannot be opened as asked (bad spec, missing or unreadable file, bad channels)."""
