"""Events on the bus: one small dataclass per type, their topics, and their JSON wire form.

Wire form: a ZeroMQ multipart message ``[topic, json]``, both UTF-8. The JSON object starts with the
same header keys for every type, in this order:

    schema, type, seq, time, stream, position_samples, position_s

then the type's own keys in the order of its dataclass fields. ``seq`` counts every event this
process has encoded (a gap means a subscriber missed events); ``time`` is wall-clock Unix time in
seconds; positions count samples of the stream at the model's sample rate since the stream began.
Scores are rounded to 4 decimals, times in seconds to 3.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from typing import ClassVar

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class KeywordEvent:
    stream: str
    position_samples: int  # end of the hop that fired
    sample_rate_hz: int
    model: str
    keyword: str
    score: float
    type: ClassVar[str] = "keyword"

    @property
    def topic(self) -> str:
        return f"keyword.{self.keyword}"


@dataclass(frozen=True)
class TagStartEvent:
    stream: str
    position_samples: int  # where the decision was taken (min_duration_s after the start)
    sample_rate_hz: int
    model: str
    tag: str
    start_samples: int
    start_s: float
    peak_score: float
    type: ClassVar[str] = "tag_start"

    @property
    def topic(self) -> str:
        return f"tag.start.{self.tag}"


@dataclass(frozen=True)
class TagEndEvent:
    stream: str
    position_samples: int  # end of the last hop inside the event
    sample_rate_hz: int
    model: str
    tag: str
    start_samples: int
    start_s: float
    duration_s: float
    peak_score: float
    mean_score: float
    reason: str  # "off", "max_length" or "flush" (stream ended or was reset)
    type: ClassVar[str] = "tag_end"

    @property
    def topic(self) -> str:
        return f"tag.end.{self.tag}"


@dataclass(frozen=True)
class ScoresEvent:
    stream: str
    position_samples: int
    sample_rate_hz: int
    model: str
    hop_samples: int
    scores: dict[str, float]  # every label of the model, in the model's label order
    type: ClassVar[str] = "scores"
    topic: ClassVar[str] = "scores"


@dataclass(frozen=True)
class StatusEvent:
    """Process state: start, heartbeat, stop, and anything that happened to a stream."""

    stream: str | None  # None: about the whole process
    position_samples: int | None
    sample_rate_hz: int | None
    state: str  # "starting", "running", "stopping", "lag_skip", "device_lost", ...
    message: str
    detail: dict = field(default_factory=dict)
    type: ClassVar[str] = "status"
    topic: ClassVar[str] = "status"


Event = KeywordEvent | TagStartEvent | TagEndEvent | ScoresEvent | StatusEvent
_HEADER = ("stream", "position_samples", "sample_rate_hz")


def _round(value):
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def to_dict(event: Event, seq: int, wall_time_s: float) -> dict:
    """The JSON object of an event, keys in wire order."""
    position, rate = event.position_samples, event.sample_rate_hz
    position_s = round(position / rate, 3) if position is not None and rate else None
    obj = {
        "schema": SCHEMA_VERSION,
        "type": event.type,
        "seq": seq,
        "time": round(wall_time_s, 3),
        "stream": event.stream,
        "position_samples": position,
        "position_s": position_s,
    }
    for f in fields(event):
        if f.name not in _HEADER:
            value = getattr(event, f.name)
            obj[f.name] = round(value, 3) if f.name.endswith("_s") else _round(value)
    return obj


def encode(event: Event, seq: int, wall_time_s: float) -> tuple[bytes, bytes]:
    """[topic, json] frames; compact separators, key order as above, never NaN."""
    body = json.dumps(to_dict(event, seq, wall_time_s), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return event.topic.encode(), body.encode()


class Sequencer:
    """Stamps events with this process's sequence number and the wall clock."""

    def __init__(self, clock=time.time):
        self.next_seq = 0
        self._clock = clock

    def encode(self, event: Event) -> tuple[bytes, bytes]:
        frames = encode(event, self.next_seq, self._clock())
        self.next_seq += 1
        return frames
