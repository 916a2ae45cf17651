"""LazyRing: the capture callback only queues; readers convert. And MicSource's conversion of queued blocks."""

import threading
import time
from types import SimpleNamespace

import numpy as np

from streamd.lazyring import LazyRing
from streamd.ring import RingBuffer
from streamd.ringsource import RingSource


def _counting_ring(capacity=1000, max_pending=100):
    calls = []

    def convert(items):
        calls.append(list(items))
        for item in items:
            ring.write(item)

    ring = LazyRing(capacity, convert, max_pending)
    return ring, calls


def _written(ring) -> int:
    """The ring's end without converting (what the readers would see had nobody converted)."""
    return RingBuffer.end_index.fget(ring)


def test_put_only_queues_and_the_first_reader_converts_everything_in_order():
    ring, calls = _counting_ring()
    for start in (0, 3, 6):
        ring.put(np.arange(start, start + 3, dtype=np.float32))
    assert calls == [] and _written(ring) == 0
    assert ring.end_index == 9 and len(calls) == 1 and len(calls[0]) == 3  # one call for all three
    np.testing.assert_array_equal(ring.read(0, 9), np.arange(9))
    assert ring.oldest_index == 0 and len(calls) == 1  # nothing queued since: no second call


def test_each_reader_converts_first():
    for look in (lambda r: r.oldest_index, lambda r: r.read(0, 0), lambda r: r.wait_beyond(0, 0.0)):
        ring, calls = _counting_ring()
        ring.put(np.ones(4, np.float32))
        look(ring)
        assert len(calls) == 1 and _written(ring) == 4


def test_a_full_queue_is_converted_by_the_writer():
    """A reader that stopped looking (a stalled main thread) must not grow the queue without bound: the ring,
    which overwrites its oldest samples, bounds the memory."""
    ring, calls = _counting_ring(capacity=10, max_pending=4)
    for i in range(3):
        ring.put(np.full(3, i, np.float32))
    assert calls == []
    ring.put(np.full(3, 3, np.float32))
    assert len(calls) == 1 and _written(ring) == 12 and len(ring._pending) == 0
    np.testing.assert_array_equal(ring.read(2, 10), [0, 1, 1, 1, 2, 2, 2, 3, 3, 3])


def test_wait_beyond_wakes_on_put_and_times_out():
    ring, _ = _counting_ring()
    t0 = time.monotonic()
    assert ring.wait_beyond(0, 0.05) is False
    assert time.monotonic() - t0 >= 0.045
    timer = threading.Timer(0.05, ring.put, args=(np.ones(3, np.float32),))
    timer.start()
    t0 = time.monotonic()
    assert ring.wait_beyond(2, 5.0) is True
    assert time.monotonic() - t0 < 2.0
    timer.join()
    assert ring.wait_beyond(2, 5.0) is True  # already beyond: no wait
    assert ring.wait_beyond(3, 0.0) is False


def test_wake_releases_a_waiter_without_data():
    ring, _ = _counting_ring()
    timer = threading.Timer(0.05, ring.wake)
    timer.start()
    t0 = time.monotonic()
    assert ring.wait_beyond(0, 5.0) is False
    assert time.monotonic() - t0 < 2.0
    timer.join()


def test_concurrent_queueing_and_reading_keep_every_sample_in_order():
    """Sample value == its absolute index; a writer queueing while a reader converts loses or reorders none."""
    ring, _ = _counting_ring(capacity=1000, max_pending=50)
    total = 100_000

    def writer():
        for start in range(0, total, 97):
            ring.put(np.arange(start, min(start + 97, total), dtype=np.float32))

    thread = threading.Thread(target=writer)
    thread.start()
    reads, errors = 0, 0
    while thread.is_alive() or ring.end_index < total:
        end = ring.end_index
        start = max(ring.oldest_index, end - 300)
        try:
            block = ring.read(start, end - start)
        except IndexError:  # overwritten between the looks (the writer converted a full queue): allowed
            continue
        reads += 1
        errors += int(not np.array_equal(block, np.arange(start, end, dtype=np.float32)))
    thread.join()
    assert reads > 0 and errors == 0 and ring.end_index == total


# -- MicSource: blocks queued by the PortAudio callback, converted by the reader --

def _call_back(mic, block: np.ndarray) -> None:
    """What PortAudio does: hand over a block (its own buffer, reused afterwards) with time and status."""
    buffer = block.copy()
    mic._callback(buffer, len(block), SimpleNamespace(inputBufferAdcTime=0.0),
                  SimpleNamespace(input_overflow=False))
    buffer[:] = np.nan  # PortAudio reuses the buffer: what was queued must be a copy


def _direct(rate_hz: int, blocks: list[np.ndarray], channels) -> np.ndarray:
    """The same blocks through RingSource's conversion, one at a time as they came (the file and stdin way)."""
    source = RingSource("direct", 16000, 10.0, channels)
    source._set_input_rate(rate_hz)
    for block in blocks:
        source._deliver(block)
    return source.ring.read(0, source.ring.end_index)


def test_the_callback_queues_and_the_reader_gets_the_samples_direct_delivery_would(vmic):
    """Stereo at 48 kHz, then (a reopened device) 16 kHz: the reader converts each stream's blocks in one call,
    and the ring holds exactly what converting block by block in the callback held."""
    # Imported here, with a virtual microphone up (vmic), though no device is opened: importing sounddevice
    # initialises PortAudio, which enumerates devices once; without a sound server then, it would find no default
    # input, and later tests' microphones would open only after re-initialising (device_lost first).
    from streamd.capture import MicSource, NewStream

    rng = np.random.default_rng(3)
    blocks_48k = [rng.uniform(-0.9, 0.9, (480, 2)).astype(np.float32) for _ in range(20)]
    blocks_16k = [rng.uniform(-0.9, 0.9, (160, 2)).astype(np.float32) for _ in range(20)]
    blocks_16k[5][7, 1] = np.nan  # sanitised the same way: counted, set to 0
    mic = MicSource("mic", 16000, channels=[0, 1], ring_seconds=10.0)
    for rate_hz, blocks in ((48000, blocks_48k), (16000, blocks_16k)):
        mic._device_rate_hz = rate_hz
        mic.ring.put(NewStream(rate_hz))
        for block in blocks:
            _call_back(mic, block)
    assert _written(mic.ring) == 0  # the callback converted nothing
    first = _direct(48000, blocks_48k, [0, 1])
    second = _direct(16000, blocks_16k, [0, 1])
    assert mic.ring.end_index == len(first) + len(second)
    np.testing.assert_array_equal(mic.ring.read(0, len(first)), first)
    np.testing.assert_array_equal(mic.ring.read(len(first), len(second)), second)
    counters = mic.counters()
    assert counters["nonfinite_samples"] == 1 and counters["callback_errors"] == 0
    assert [note.kind for note in mic.drain_notes()] == ["bad_samples"]


def test_a_block_that_fails_to_convert_is_counted_not_raised_into_the_reader(vmic):
    """The main loop converts on PortAudio's behalf: an error there must not stop the service, as an error in the
    callback never did; it loses that run of blocks and counts it (`callback_errors`)."""
    from streamd.capture import MicSource, NewStream

    mic = MicSource("mic", 16000, ring_seconds=10.0)
    mic._device_rate_hz = 16000
    mic.ring.put(NewStream(16000))
    _call_back(mic, np.full((160, 1), 0.1, np.float32))
    deliver, mic._deliver = mic._deliver, lambda block: 1 / 0
    assert mic.ring.end_index == 0 and mic.counters()["callback_errors"] == 1
    mic._deliver = deliver
    _call_back(mic, np.full((160, 1), 0.2, np.float32))
    assert mic.ring.end_index == 160 and mic.counters()["callback_errors"] == 1
    np.testing.assert_array_equal(mic.ring.read(0, 160), np.full(160, 0.2, np.float32))
