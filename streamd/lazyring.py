"""A RingBuffer that its writer fills by queueing raw items and its readers fill by converting them.

The microphone's PortAudio callback runs every 10 ms on a thread whose caches are cold by then, where each
numpy call costs several times what it costs in a loop (docs/bench.md "Capture blocks"). So the callback only
queues a copy of its block (`put`), and whichever thread looks at the ring next (`end_index`, `oldest_index`,
`read`, `wait_beyond`) converts everything queued in one call first. The main thread looks once per hop
anyway and converts a hop's blocks for about the price of one; the samples are the same because the
conversion does not depend on block sizes.

Memory stays bounded by the ring, not by the queue: when `max_pending` items wait (nobody has looked for that
long: a stalled main thread), the writer converts them itself, and the ring drops its oldest samples as before.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable

from streamd.ring import RingBuffer


class LazyRing(RingBuffer):
    def __init__(self, capacity_samples: int, convert: Callable[[list], None], max_pending: int):
        """convert(items) gets the queued items in arrival order, on the converting thread, one call at a time;
        it writes its samples with `write` (which does not convert)."""
        super().__init__(capacity_samples)
        self._convert = convert
        self._max_pending = max(1, int(max_pending))
        self._pending: collections.deque = collections.deque()  # append (writer) and popleft (converter) only
        self._convert_lock = threading.RLock()  # one converter at a time, in queue order
        self._arrived = threading.Condition(threading.Lock())
        self._readers_waiting = 0  # in wait_beyond: only then does `put` pay for a notify

    # -- writer side --
    def put(self, item: object) -> None:
        """Queue one item (a raw block, or a marker that `convert` understands). Never converts, unless the
        queue is full."""
        self._pending.append(item)
        if len(self._pending) >= self._max_pending:
            self.collect()
        # Read without the lock: a reader counts itself in, then looks at the queue, then waits, all under
        # the lock; so either it sees this item or this sees it waiting (and the notify waits for its wait).
        if self._readers_waiting:
            with self._arrived:
                self._arrived.notify_all()

    def collect(self) -> None:
        """Convert every queued item into the ring now (the readers below call this first)."""
        if not self._pending:
            return
        with self._convert_lock:
            items = [self._pending.popleft() for _ in range(len(self._pending))]
            if items:
                self._convert(items)

    # -- reader side: the Ring protocol, each converting first --
    @property
    def end_index(self) -> int:
        self.collect()
        return super().end_index

    @property
    def oldest_index(self) -> int:
        self.collect()
        return super().oldest_index

    def read(self, start_index: int, n_samples: int):
        self.collect()
        return super().read(start_index, n_samples)

    def wait_beyond(self, index: int, timeout_s: float) -> bool:
        """Block until end_index > index, or until something is queued, wake() is called or timeout_s passes
        (callers loop on a deadline); True if beyond."""
        if self.end_index > index:
            return True
        with self._arrived:
            self._readers_waiting += 1
            try:
                if not self._pending:
                    self._arrived.wait(timeout_s)
            finally:
                self._readers_waiting -= 1
        return self.end_index > index

    def wake(self) -> None:
        super().wake()
        with self._arrived:
            self._arrived.notify_all()
