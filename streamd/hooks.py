"""Run a shell command for an event (`streamd listen --exec CMD`), the way a home script wants it.

The command runs through /bin/sh with the event's JSON on stdin and its main fields in the environment,
so `notify-send "$STREAMD_LABEL"` or `jq .score` work without parsing anything. Commands run one at a time,
in the order of the events: a command that ends in `&` puts itself in the background; one that takes long
delays the next events, which ZeroMQ queues meanwhile (up to the subscriber's queue of 1000 and the service's
`bus.high_water_mark`).
"""

from __future__ import annotations

import json
import os
import subprocess

# event type -> the key naming what was heard, and the key holding its score
LABEL_KEYS = {"keyword": ("keyword", "score"), "tag_start": ("tag", "peak_score"), "tag_end": ("tag", "peak_score")}


def event_env(topic: bytes, body: bytes) -> dict[str, str]:
    """STREAMD_* variables for one event: TOPIC, TYPE, STREAM, POSITION_S, LABEL and SCORE (empty where the
    event type has none, e.g. status), and EVENT, the JSON object as the bus carried it."""
    event = json.loads(body)
    label_key, score_key = LABEL_KEYS.get(event.get("type"), (None, None))
    values = {"TOPIC": topic.decode(), "TYPE": event.get("type"), "STREAM": event.get("stream"),
              "POSITION_S": event.get("position_s"), "LABEL": event.get(label_key), "SCORE": event.get(score_key),
              "EVENT": body.decode()}
    return {f"STREAMD_{key}": "" if value is None else str(value) for key, value in values.items()}


def run_command(command: str, topic: bytes, body: bytes) -> int:
    """Run `command` for one event and wait for it; its exit status (negative: killed by that signal)."""
    env = {**os.environ, **event_env(topic, body)}
    return subprocess.run(["/bin/sh", "-c", command], input=body + b"\n", env=env).returncode
