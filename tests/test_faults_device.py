"""Device faults at the service level, through the virtual microphone: the source vanishes and comes
back, the sound server restarts. The service must publish a status event for each step, keep
running, and detect again afterwards. (tests/test_sources.py covers the capture class itself; this
checks what a subscriber sees.)
"""

from __future__ import annotations

import time

import pytest
import soundfile

from faultkit import Service
from tiny_model import SAMPLE_RATE_HZ, build, tone_bursts

pytest.importorskip("streamd.cli", reason="the service CLI (streamd/cli.py) is not in this checkout yet")

RECOVERY_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    return build(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture
def burst_wav(tmp_path):
    path = tmp_path / "burst.wav"
    soundfile.write(path, tone_bursts([(0.3, 0.9)], 1.5), SAMPLE_RATE_HZ, subtype="PCM_16")
    return path


def mic_config(model_path) -> dict:
    return {
        "inputs": [{"name": "mic", "source": "mic"}],
        "models": [{"path": str(model_path), "latency_ms": 100}],
        "keyword_defaults": {"threshold": 0.5, "n_of_m": [1, 1], "refractory_s": 0.5},
        "keywords": [{"name": "yes"}],
        "heartbeat": {"interval_s": 3600.0},
        "logging": {"level": "INFO"},
    }


def _status(state):
    return lambda e: e["type"] == "status" and e.get("state") == state


def _hears_a_burst(vmic, sub, burst_wav, tries: int = 3) -> bool:
    for _ in range(tries):
        vmic.play(burst_wav)
        try:
            sub.wait_for(lambda e: e["type"] == "keyword" and e["keyword"] == "yes", 3.0)
            return True
        except TimeoutError:
            continue
    return False


def test_source_removed_and_restored_then_server_restarted(vmic, tmp_path, tiny_model_path, burst_wav):
    with Service(mic_config(tiny_model_path), tmp_path, env=vmic.env) as svc:
        sub = svc.subscribe()
        svc.wait_ready()
        assert _hears_a_burst(vmic, sub, burst_wav), "no keyword before any fault"

        vmic.remove_device()
        sub.wait_for(_status("device_lost"), RECOVERY_TIMEOUT_S)
        time.sleep(1.0)
        assert svc.proc.poll() is None, svc.stderr[-2000:]
        vmic.restore_device()
        sub.wait_for(_status("device_reopened"), RECOVERY_TIMEOUT_S)
        assert _hears_a_burst(vmic, sub, burst_wav), "no keyword after the device came back"

        vmic.restart_server(down_s=1.0)
        sub.wait_for(_status("device_lost"), RECOVERY_TIMEOUT_S)
        sub.wait_for(_status("device_reopened"), RECOVERY_TIMEOUT_S)
        assert _hears_a_burst(vmic, sub, burst_wav), "no keyword after the sound server restarted"

        assert svc.stop() == 0, svc.stderr[-2000:]
        assert not svc.leftovers()
    seqs = [e["seq"] for e in sub.events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert "Traceback" not in svc.stderr
