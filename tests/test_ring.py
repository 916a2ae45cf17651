import threading

import numpy as np
import pytest

from streamd.ring import RingBuffer


def test_indices_and_read_before_wrap():
    ring = RingBuffer(10)
    ring.write(np.arange(4, dtype=np.float32))
    assert (ring.oldest_index, ring.end_index) == (0, 4)
    np.testing.assert_array_equal(ring.read(1, 3), [1, 2, 3])
    assert ring.read(4, 0).shape == (0,)


def test_wrap_keeps_absolute_indices():
    ring = RingBuffer(10)
    for start in range(0, 23, 7):  # writes of 7 cross the end of the array
        ring.write(np.arange(start, start + 7, dtype=np.float32))
    assert ring.end_index == 28 and ring.oldest_index == 18
    np.testing.assert_array_equal(ring.read(18, 10), np.arange(18, 28))
    np.testing.assert_array_equal(ring.read(25, 3), [25, 26, 27])


def test_overrun_drops_oldest_and_read_of_lost_samples_fails():
    ring = RingBuffer(8)
    ring.write(np.arange(5, dtype=np.float32))
    ring.write(np.arange(5, 30, dtype=np.float32))  # one write larger than the ring
    assert (ring.oldest_index, ring.end_index) == (22, 30)
    np.testing.assert_array_equal(ring.read(22, 8), np.arange(22, 30))
    with pytest.raises(IndexError, match=r"holds \[22, 30\)"):
        ring.read(21, 2)
    with pytest.raises(IndexError):
        ring.read(29, 2)  # beyond the newest sample


def test_memory_is_fixed():
    ring = RingBuffer(100)
    buffer_id = id(ring._data)
    for _ in range(1000):
        ring.write(np.ones(37, np.float32))
    assert id(ring._data) == buffer_id and ring._data.nbytes == 400
    assert ring.end_index == 37_000


def test_wait_beyond_wakes_on_write_and_times_out():
    ring = RingBuffer(16)
    assert ring.wait_beyond(0, 0.01) is False
    timer = threading.Timer(0.05, ring.write, args=(np.ones(3, np.float32),))
    timer.start()
    assert ring.wait_beyond(0, 5.0) is True
    timer.join()


def test_concurrent_writer_and_reader_see_consistent_samples():
    """Sample value == its absolute index; a reader racing the writer never sees a torn block."""
    ring = RingBuffer(1000)
    total = 200_000
    errors = []

    def writer():
        for start in range(0, total, 97):
            ring.write(np.arange(start, min(start + 97, total), dtype=np.float32))

    thread = threading.Thread(target=writer)
    thread.start()
    while thread.is_alive() or ring.end_index < total:
        end, oldest = ring.end_index, ring.oldest_index
        n = min(50, end - oldest)
        try:
            block = ring.read(end - n, n)
        except IndexError:  # overwritten between the two looks: allowed, never torn data
            continue
        if not np.array_equal(block, np.arange(end - n, end, dtype=np.float32)):
            errors.append((end, n))
    thread.join()
    assert errors == []
