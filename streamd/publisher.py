"""The event bus: the service's only ZeroMQ PUB-side socket (XPUB, so it sees subscriptions).

Sends never block. With ``drop_for_all`` off (the default) libzmq drops messages for a subscriber
whose queue holds ``high_water_mark`` messages, for that subscriber only and silently; it sees a gap
in ``seq``. With ``drop_for_all`` on, the publisher is told when any matching subscriber is full
(XPUB_NODROP + EAGAIN), drops the message for everyone and counts it in ``dropped_events``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import zmq

from streamd.events import Event, Sequencer

log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, endpoint: str, high_water_mark: int = 10000, drop_for_all: bool = False,
                 linger_ms: int = 200, sequencer: Sequencer | None = None):
        self.endpoint = endpoint
        self.sequencer = sequencer or Sequencer()
        self.sent_events = 0
        self.dropped_events = 0
        self.subscriptions: dict[bytes, int] = {}  # topic prefix -> active subscriptions
        self._ipc_path = _ipc_path(endpoint)
        if self._ipc_path:
            self._ipc_path.parent.mkdir(parents=True, exist_ok=True)
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.XPUB)
        # Options must be set before bind to apply to every subscriber's pipe.
        self._socket.setsockopt(zmq.SNDHWM, high_water_mark)
        self._socket.setsockopt(zmq.LINGER, linger_ms)
        self._socket.setsockopt(zmq.XPUB_VERBOSER, 1)  # every subscribe and unsubscribe, for the count
        if drop_for_all:
            self._socket.setsockopt(zmq.XPUB_NODROP, 1)
        try:
            self._socket.bind(endpoint)
        except zmq.ZMQError as err:
            self._socket.close(0)
            self._context.term()
            raise OSError(f"cannot bind the event bus to {endpoint}: {err}") from None
        log.info("event bus on %s (high-water mark %d, drop_for_all %s)", endpoint, high_water_mark, drop_for_all)

    @property
    def subscriber_count(self) -> int:
        """Active subscriptions (a subscriber with two topic filters counts twice)."""
        self.poll_subscriptions()
        return sum(self.subscriptions.values())

    def poll_subscriptions(self) -> None:
        while True:
            try:
                frame = self._socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if not frame:
                continue
            topic, delta = frame[1:], (1 if frame[0] == 1 else -1)
            count = self.subscriptions.get(topic, 0) + delta
            if count > 0:
                self.subscriptions[topic] = count
            else:
                self.subscriptions.pop(topic, None)

    def publish(self, event: Event) -> bool:
        """Stamp and send one event without blocking; False (and counted) if it was dropped."""
        return self.send(*self.sequencer.encode(event))

    def send(self, topic: bytes, body: bytes) -> bool:
        """Send already-encoded frames without blocking; False (and counted) if they were dropped."""
        self.poll_subscriptions()  # keep the subscription frames from piling up
        try:
            self._socket.send_multipart([topic, body], zmq.NOBLOCK)
        except zmq.Again:
            self.dropped_events += 1
            if self.dropped_events in (1, 10, 100) or self.dropped_events % 1000 == 0:
                log.warning("a subscriber is full: %d events dropped so far", self.dropped_events)
            return False
        self.sent_events += 1
        return True

    def close(self) -> None:
        """Close with the configured linger (bounded), terminate the context, remove the ipc file.
        A second call does nothing."""
        if self._context.closed:
            return
        self._socket.close()
        self._context.term()
        if self._ipc_path:
            try:
                self._ipc_path.unlink()
            except FileNotFoundError:
                pass
            except OSError as err:
                log.warning("could not remove %s: %s", self._ipc_path, err)


def _ipc_path(endpoint: str) -> Path | None:
    if endpoint.startswith("ipc://") and not endpoint.startswith("ipc://@"):  # @: Linux abstract namespace
        return Path(endpoint[len("ipc://"):])
    return None


def ipc_cleanup(endpoint: str) -> None:
    """Remove a stale ipc socket file (a previous process that died without closing)."""
    path = _ipc_path(endpoint)
    if path and path.exists() and not os.path.isdir(path):
        path.unlink()
