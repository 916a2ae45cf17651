"""Bus faults: a subscriber that stops reading, one that connects and disconnects in a loop, many
subscribers. The service must keep its pace, and a reading subscriber must miss nothing.

CI uses SUBSCRIBERS_CI subscribers; `pytest -m slow tests/test_faults_bus.py` uses 1000.
"""

from __future__ import annotations

import time

import pytest
import soundfile
import zmq

from faultkit import Service
from tiny_model import SAMPLE_RATE_HZ, build, tone_bursts

pytest.importorskip("streamd.cli", reason="the service CLI (streamd/cli.py) is not in this checkout yet")

SUBSCRIBERS_CI = 100
SUBSCRIBERS_SLOW = 1000
AUDIO_S = 8.0
BURSTS_S = [(1.0 + 1.5 * i, 1.6 + 1.5 * i) for i in range(4)]


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    return build(tmp_path_factory.mktemp("model") / "tiny.onnx")


def busy_config(model_path, wav, fast_scores: bool = True) -> dict:
    """Scores on every hop (10 events/s) plus keyword events: enough traffic to fill a small queue."""
    return {
        "inputs": [{"name": "file", "source": f"file:{wav}"}],
        "models": [{"path": str(model_path), "latency_ms": 100}],
        "keyword_defaults": {"threshold": 0.5, "n_of_m": [1, 1], "refractory_s": 1.0},
        "keywords": [{"name": "yes"}],
        "bus": {"scores": fast_scores, "scores_interval_s": 0.1, "high_water_mark": 50},
        "heartbeat": {"interval_s": 3600.0},
        "logging": {"level": "WARNING"},
    }


@pytest.fixture
def bursts_wav(tmp_path):
    wav = tmp_path / "bursts.wav"
    soundfile.write(wav, tone_bursts(BURSTS_S, AUDIO_S), SAMPLE_RATE_HZ, subtype="PCM_16")
    return wav


def _contiguous(events) -> bool:
    seqs = [e["seq"] for e in events]
    return bool(seqs) and seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def _run_realtime(svc, sub, extra=lambda: None) -> float:
    svc.wait_ready()
    t0 = time.monotonic()
    while svc.proc.poll() is None:
        sub.drain(quiet_s=0.01, max_events=200)
        extra()
        if time.monotonic() - t0 > AUDIO_S + 20:
            raise TimeoutError("the service did not finish its file")
    sub.drain(quiet_s=0.3)
    return time.monotonic() - t0


def test_stalled_subscriber_does_not_slow_the_service_or_starve_a_reader(tmp_path, tiny_model_path, bursts_wav):
    with Service(busy_config(tiny_model_path, bursts_wav), tmp_path) as svc:
        stalled = svc.subscribe(hwm=10)  # never reads: its queue fills, then libzmq drops for it
        reader = svc.subscribe()
        wall_s = _run_realtime(svc, reader)
        assert svc.proc.returncode == 0, svc.stderr[-2000:]
        got_stalled = stalled.drain(quiet_s=0.2)
    hops = int(AUDIO_S * 10)
    scores = [e for e in reader.events if e["type"] == "scores"]
    assert len(scores) >= hops - 2, f"reader got {len(scores)} of ~{hops} scores events"
    assert _contiguous(reader.events)
    assert len([e for e in reader.events if e["type"] == "keyword"]) == len(BURSTS_S)
    assert wall_s < AUDIO_S + 3.0, f"real-time {AUDIO_S} s of audio took {wall_s:.1f} s with a stalled subscriber"
    assert len(got_stalled) < len(reader.events), "the stalled subscriber's queue was unbounded"


def test_connect_disconnect_loop_leaves_a_reader_whole(tmp_path, tiny_model_path, bursts_wav):
    with Service(busy_config(tiny_model_path, bursts_wav), tmp_path) as svc:
        reader = svc.subscribe()
        churn = {"n": 0}

        def flap():
            sock = svc.context.socket(zmq.SUB)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(svc.bus)
            sock.poll(5)
            sock.close(0)
            churn["n"] += 1

        _run_realtime(svc, reader, flap)
        assert svc.proc.returncode == 0, svc.stderr[-2000:]
    assert churn["n"] > 50, f"only {churn['n']} connect/disconnect cycles"
    assert _contiguous(reader.events)
    assert len([e for e in reader.events if e["type"] == "keyword"]) == len(BURSTS_S)


def many_subscribers(tmp_path, model_path, wav, n: int) -> None:
    with Service(busy_config(model_path, wav, fast_scores=False), tmp_path) as svc:
        subs = [svc.subscribe(topics=(b"keyword.",)) for _ in range(n)]
        reader = svc.subscribe()
        _run_realtime(svc, reader)
        assert svc.proc.returncode == 0, svc.stderr[-2000:]
        counts = [len(sub.drain(quiet_s=0.01)) for sub in subs]
    assert len([e for e in reader.events if e["type"] == "keyword"]) == len(BURSTS_S)
    assert min(counts) == max(counts) == len(BURSTS_S), f"keyword events per subscriber: min {min(counts)}, max {max(counts)}"


def test_many_subscribers_ci(tmp_path, tiny_model_path, bursts_wav):
    many_subscribers(tmp_path, tiny_model_path, bursts_wav, SUBSCRIBERS_CI)


@pytest.mark.slow
def test_thousand_subscribers(tmp_path, tiny_model_path, bursts_wav):
    many_subscribers(tmp_path, tiny_model_path, bursts_wav, SUBSCRIBERS_SLOW)
