"""What the scheduler needs from an audio source (microphone, file, stdin).

A source delivers mono float32 samples at the model's sample rate into its RingBuffer, counted by an
absolute sample index from the start of the stream. Real-time sources (microphone, file at real-time
pace, stdin) fill the ring from their own thread, which never raises; a microphone's thread only queues
its blocks, which the thread reading the ring converts (streamd.lazyring). A
non-real-time source (file with --fast) is pumped by the main thread instead, so it can never run
ahead of inference and nothing is lost.

The capture thread never touches the ZeroMQ socket: it queues StatusNotes (device lost, reopened,
overflow episodes) that the main thread drains and publishes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class StatusNote:
    kind: str  # e.g. "device_lost", "device_reopened", "overflow", "source_finished"
    message: str  # one human-readable line
    detail: dict = field(default_factory=dict)


class Ring(Protocol):
    @property
    def end_index(self) -> int:
        """Absolute index just after the newest sample written."""

    @property
    def oldest_index(self) -> int:
        """Absolute index of the oldest sample still held."""

    def read(self, start_index: int, n_samples: int) -> np.ndarray:
        """Copy of samples [start_index, start_index + n_samples); both ends must be held."""


class Source(Protocol):
    name: str  # the stream name in events
    sample_rate_hz: int  # of the samples in the ring (the model's rate)
    realtime: bool  # False: the main thread calls pump()
    ring: Ring

    def start(self) -> None: ...

    def stop(self) -> None:
        """Stop capture and join the thread (bounded wait)."""

    def pump(self, max_samples: int) -> int:
        """Non-real-time only: decode up to max_samples more into the ring; return how many (0 = end)."""

    @property
    def finished(self) -> bool:
        """A file or stdin source has delivered its last sample (a microphone never finishes)."""

    def wait_for_data(self, timeout_s: float) -> None:
        """Block until new samples arrive, the source finishes, or timeout_s passes."""

    def drain_notes(self) -> list[StatusNote]: ...

    def counters(self) -> dict:
        """overflows, dropped_samples, reopens, device name: for status events."""
