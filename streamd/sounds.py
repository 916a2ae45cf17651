"""One sound that several models hear is one sound, for a subscriber that acts on tag events.

Each model publishes its own `tag_start` and `tag_end` (docs/service.md "Events"), and `config.yaml`'s two
models both score `smoke_alarm`: an alarm comes as two starts and two ends. A subscriber that acts once per
sound acts at the first model's start and at the last model's end, per stream and tag. A service that was
killed sent no ends, so what it held is forgotten when a service starts again: its `started` status, or any
event whose `seq` is lower than the last one seen (`seq` counts from 0 in every process, and the `started`
status can go out before a reconnecting subscriber is back). `examples/subscribe.py` keeps the same
bookkeeping in its own copy, so that it needs only pyzmq.
"""

from __future__ import annotations


class Sounds:
    def __init__(self) -> None:
        self.hearing: dict[tuple[str | None, str], set[str]] = {}  # (stream, tag) -> models that have it on
        self.last_seq = -1

    def acts_on(self, event: dict) -> bool:
        """Note one event; False for a tag_start while another model has that tag on, and for a tag_end while
        another model still has it on: the same sound. Every other event is acted on."""
        seq = event.get("seq", -1)
        if seq < self.last_seq or (event.get("type") == "status" and event.get("message") == "started"):
            self.hearing.clear()  # a new service process
        self.last_seq = seq
        kind = event.get("type")
        if kind not in ("tag_start", "tag_end"):
            return True
        models = self.hearing.setdefault((event.get("stream"), event["tag"]), set())
        if kind == "tag_start":
            first = not models
            models.add(event.get("model", ""))
            return first
        models.discard(event.get("model", ""))
        return not models
