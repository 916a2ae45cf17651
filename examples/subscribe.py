"""A complete streamd subscriber for your own program: act on events, and notice when the service goes quiet.

    python examples/subscribe.py ipc:///run/streamd/events keyword.computer tag.start.smoke_alarm

Needs only pyzmq. Prints one line per event of the given topic prefixes (all events without any), and a
warning on stderr when not even a heartbeat has arrived for --stale-s seconds: the service publishes a
`status` event every `heartbeat.interval_s` (30 s by default), so silence for longer means it is stopped,
stuck or unreachable, never that nothing was heard. It goes on listening and says when the service is back
(ZeroMQ reconnects by itself when the service restarts). A sound that several models hear (config.yaml's two
both score smoke_alarm) is acted on once: at the first model's start, and at the last model's end (what a
killed service never ended is forgotten when it starts again). Replace `act` with what your program does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import zmq


class Sounds:
    """Which models have each (stream, tag) on, so that one sound heard by two models is one sound."""

    def __init__(self) -> None:
        self.hearing: dict[tuple[str, str], set[str]] = {}

    def starts(self, event: dict) -> bool:
        """Note a tag_start; True if no other model had this tag on on this stream."""
        models = self.hearing.setdefault((event["stream"], event["tag"]), set())
        first = not models
        models.add(event["model"])
        return first

    def ends(self, event: dict) -> bool:
        """Note a tag_end; True if no model has this tag on on this stream any more."""
        models = self.hearing.get((event["stream"], event["tag"]), set())
        models.discard(event["model"])
        return not models

    def forget(self) -> None:
        """A service that started again, or went silent, holds no event its ends would close."""
        self.hearing.clear()


def act(event: dict) -> None:
    if event["type"] == "keyword":
        print(f"heard {event['keyword']!r} on {event['stream']} (score {event['score']:.2f})", flush=True)
    elif event["type"] == "tag_start":
        print(f"{event['tag']} started on {event['stream']} at {event['start_s']:.2f} s", flush=True)
    elif event["type"] == "tag_end":
        print(f"{event['tag']} ended on {event['stream']} after {event['duration_s']:.2f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", help="the service's bus endpoint (config bus.endpoint)")
    parser.add_argument("topics", nargs="*", help="topic prefixes to act on, e.g. keyword. or tag.start.dog")
    parser.add_argument("--stale-s", type=float, default=75.0, help="warn after this long without any message (s)")
    args = parser.parse_args()

    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(args.endpoint)  # works before the service is up, too
    for topic in args.topics or [""]:
        sub.setsockopt_string(zmq.SUBSCRIBE, topic)
    sub.setsockopt_string(zmq.SUBSCRIBE, "status")  # heartbeats, so that silence can be told from quiet
    sub.setsockopt_string(zmq.SUBSCRIBE, "tag.")  # every model's starts and ends, to tell one sound from two
    sounds = Sounds()

    last_heard = time.monotonic()
    stale = False
    while True:
        if not sub.poll(timeout=1000):
            if not stale and time.monotonic() - last_heard > args.stale_s:
                stale = True
                sounds.forget()
                print(f"no message from streamd for {args.stale_s:g} s: is it running?", file=sys.stderr, flush=True)
            continue
        topic, body = sub.recv_multipart()[:2]
        last_heard = time.monotonic()
        if stale:
            stale = False
            print("streamd is back", file=sys.stderr, flush=True)
        event = json.loads(body)
        if event["type"] == "status" and event["state"] == "stopping":
            print(f"streamd {event['message']}", file=sys.stderr, flush=True)
        if event["type"] == "status" and event["message"] == "started":
            sounds.forget()  # a service that was killed sent no ends
        if event["type"] == "tag_start" and not sounds.starts(event):
            continue  # another model hears it already
        if event["type"] == "tag_end" and not sounds.ends(event):
            continue  # another model still hears it
        if any(topic.decode().startswith(t) for t in args.topics or [""]):
            act(event)  # else subscribed for liveness or bookkeeping only


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
