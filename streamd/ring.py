"""A fixed-size ring of mono float32 samples addressed by absolute sample index.

One writer thread (capture) and one reader thread (scheduler). A write never waits for the reader:
when the ring is full the oldest samples are overwritten, and the reader sees that as
`oldest_index` moving past the position it wanted. Memory is allocated once.
"""

from __future__ import annotations

import threading

import numpy as np


class RingBuffer:
    def __init__(self, capacity_samples: int):
        if capacity_samples <= 0:
            raise ValueError(f"capacity_samples must be positive, not {capacity_samples}")
        self.capacity_samples = int(capacity_samples)
        self._data = np.zeros(self.capacity_samples, np.float32)
        self._end_index = 0  # absolute index just after the newest sample
        self._cond = threading.Condition(threading.Lock())

    @property
    def end_index(self) -> int:
        with self._cond:
            return self._end_index

    @property
    def oldest_index(self) -> int:
        with self._cond:
            return max(0, self._end_index - self.capacity_samples)

    def write(self, samples: np.ndarray) -> None:
        """Append samples, overwriting the oldest when full. Holds the lock only for the copy."""
        samples = np.asarray(samples, np.float32).reshape(-1)
        n = len(samples)
        if n == 0:
            return
        with self._cond:
            if n >= self.capacity_samples:  # only the newest capacity_samples can survive
                self._end_index += n - self.capacity_samples
                samples = samples[-self.capacity_samples :]
                n = self.capacity_samples
            start = self._end_index % self.capacity_samples
            first = min(n, self.capacity_samples - start)
            self._data[start : start + first] = samples[:first]
            if first < n:  # wrapped round the end
                self._data[: n - first] = samples[first:]
            self._end_index += n
            self._cond.notify_all()

    def read(self, start_index: int, n_samples: int) -> np.ndarray:
        """Copy of samples [start_index, start_index + n_samples); IndexError unless all are held."""
        with self._cond:
            oldest = max(0, self._end_index - self.capacity_samples)
            if n_samples < 0 or start_index < oldest or start_index + n_samples > self._end_index:
                raise IndexError(
                    f"samples [{start_index}, {start_index + n_samples}) not held; "
                    f"ring holds [{oldest}, {self._end_index})"
                )
            start = start_index % self.capacity_samples
            first = min(n_samples, self.capacity_samples - start)
            return np.concatenate([self._data[start : start + first], self._data[: n_samples - first]])

    def wait_beyond(self, index: int, timeout_s: float) -> bool:
        """Block until end_index > index or timeout_s passes (or wake() is called); True if beyond."""
        with self._cond:
            if self._end_index <= index:
                self._cond.wait(timeout_s)
            return self._end_index > index

    def wake(self) -> None:
        """Release waiters without new data (the source finished or is stopping)."""
        with self._cond:
            self._cond.notify_all()
