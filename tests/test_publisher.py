"""The publisher never blocks on a stalled subscriber, counts drops when told to, cleans up its ipc file."""

import json
import time

import pytest
import zmq

from streamd.events import KeywordEvent
from streamd.publisher import Publisher


def event(i: int) -> KeywordEvent:
    return KeywordEvent("mic", i, 16000, "m", "yes", 0.9)


def subscribe(context, endpoint, topic=b"", hwm=None):
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVTIMEO, 2000)
    if hwm is not None:
        sub.setsockopt(zmq.RCVHWM, hwm)
        sub.setsockopt(zmq.RCVBUF, 4096)
    sub.connect(endpoint)
    sub.setsockopt(zmq.SUBSCRIBE, topic)
    return sub


def wait_for_subscribers(pub, n, timeout_s=2.0):
    deadline = time.monotonic() + timeout_s
    while pub.subscriber_count < n:
        assert time.monotonic() < deadline, "subscription never arrived"
        time.sleep(0.005)


@pytest.fixture
def context():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


@pytest.fixture
def publisher():
    """Publisher(...) that is closed after the test also when it failed half-way: a context left to the
    garbage collector with an open socket can block its term() for good and hang the whole run."""
    made = []

    def make(*args, **kwargs):
        made.append(Publisher(*args, **kwargs))
        return made[-1]

    yield make
    for pub in made:
        pub.close()


def test_events_arrive_as_topic_and_json_with_consecutive_seq(tmp_path, context, publisher):
    endpoint = f"ipc://{tmp_path}/events"
    pub = publisher(endpoint, high_water_mark=100)
    sub = subscribe(context, endpoint, b"keyword.")
    wait_for_subscribers(pub, 1)
    for i in range(5):
        assert pub.publish(event(i))
    frames = [sub.recv_multipart() for _ in range(5)]
    assert [f[0] for f in frames] == [b"keyword.yes"] * 5
    assert [json.loads(f[1])["seq"] for f in frames] == [0, 1, 2, 3, 4]
    pub.close()
    assert not (tmp_path / "events").exists()


def test_stalled_subscriber_never_blocks_and_drops_are_counted(tmp_path, context, publisher):
    endpoint = f"ipc://{tmp_path}/events"
    pub = publisher(endpoint, high_water_mark=50, drop_for_all=True, linger_ms=0)
    stalled = subscribe(context, endpoint, hwm=50)  # never reads
    wait_for_subscribers(pub, 1)
    n = 20000
    start = time.perf_counter()
    sent = sum(pub.publish(event(i)) for i in range(n))
    elapsed = time.perf_counter() - start
    assert elapsed < 20.0, f"{n} sends took {elapsed:.2f} s"  # a blocking send would never return
    assert pub.dropped_events > 0 and sent + pub.dropped_events == n
    assert sent < 5000  # the queues hold a few hundred, not 20000
    close_start = time.perf_counter()
    pub.close()
    assert time.perf_counter() - close_start < 5.0  # linger 0: does not wait for the stalled reader
    stalled.close()


def test_default_policy_a_stalled_subscriber_does_not_starve_a_reader(tmp_path, context, publisher):
    endpoint = f"ipc://{tmp_path}/events"
    pub = publisher(endpoint, high_water_mark=1000, linger_ms=0)
    stalled = subscribe(context, endpoint, hwm=50)
    reader = subscribe(context, endpoint)
    wait_for_subscribers(pub, 2)
    n, batch = 20000, 200
    seqs_read = []
    start = time.perf_counter()
    for first in range(0, n, batch):
        for i in range(first, first + batch):
            assert pub.publish(event(i))  # never refused: drops happen per subscriber
        while len(seqs_read) < first + batch and reader.poll(1000):
            seqs_read.append(json.loads(reader.recv_multipart()[1])["seq"])
    assert time.perf_counter() - start < 60.0
    assert seqs_read == list(range(n))  # the reader misses nothing
    assert pub.dropped_events == 0
    seqs_stalled = []
    while stalled.poll(100):
        seqs_stalled.append(json.loads(stalled.recv_multipart()[1])["seq"])
    assert seqs_stalled[:10] == list(range(10))
    assert len(seqs_stalled) < n // 2  # it lost what did not fit in its queues: a gap in seq shows it
    pub.close()


def test_subscriber_count_follows_subscribe_and_unsubscribe(tmp_path, context, publisher):
    endpoint = f"ipc://{tmp_path}/events"
    pub = publisher(endpoint)
    sub = subscribe(context, endpoint, b"status")
    wait_for_subscribers(pub, 1)
    sub.setsockopt(zmq.UNSUBSCRIBE, b"status")
    deadline = time.monotonic() + 2
    while pub.subscriber_count and time.monotonic() < deadline:
        time.sleep(0.005)
    assert pub.subscriber_count == 0
    pub.close()


def test_bind_failure_is_an_oserror(context):
    taken = context.socket(zmq.PUB)
    port = taken.bind_to_random_port("tcp://127.0.0.1")
    with pytest.raises(OSError, match=f"cannot bind the event bus to tcp://127.0.0.1:{port}"):
        Publisher(f"tcp://127.0.0.1:{port}")
    taken.close(0)
