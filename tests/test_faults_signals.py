"""Signals: a SIGHUP storm during audio changes nothing but the reloaded settings; SIGTERM at any
moment of start-up ends in a clean exit with nothing left behind (ipc files, child processes).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from faultkit import Service, children_of
from tiny_model import SAMPLE_RATE_HZ, build, tone_bursts

pytest.importorskip("streamd.cli", reason="the service CLI (streamd/cli.py) is not in this checkout yet")

BURSTS_S = [(1.0 + 1.5 * i, 1.6 + 1.5 * i) for i in range(6)]  # 6 bursts over ~10 s
CLEAN_EXIT_CODES = (0, 143, -signal.SIGTERM)  # 0 after a graceful stop; 143/-15 only before handlers exist


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    return build(tmp_path_factory.mktemp("model") / "tiny.onnx")


def file_config(model_path, wav) -> dict:
    return {
        "inputs": [{"name": "file", "source": f"file:{wav}"}],
        "models": [{"path": str(model_path), "latency_ms": 100}],
        "keyword_defaults": {"threshold": 0.5, "n_of_m": [1, 1], "refractory_s": 1.0},
        "keywords": [{"name": "yes"}],
        "heartbeat": {"interval_s": 3600.0},
        "logging": {"level": "WARNING"},
    }


def test_sighup_storm_during_audio(tmp_path, tiny_model_path):
    wav = tmp_path / "bursts.wav"
    soundfile.write(wav, tone_bursts(BURSTS_S, 10.5), SAMPLE_RATE_HZ, subtype="PCM_16")
    with Service(file_config(tiny_model_path, wav), tmp_path) as svc:
        sub = svc.subscribe()
        svc.wait_ready()
        storm_end = time.monotonic() + 6.0
        sent = 0
        while time.monotonic() < storm_end and svc.proc.poll() is None:
            svc.signal(signal.SIGHUP)
            sent += 1
            time.sleep(0.02)
            sub.drain(quiet_s=0.0)
        assert svc.proc.poll() is None, f"died during the SIGHUP storm; stderr:\n{svc.stderr[-2000:]}"
        code = svc.wait(20)  # the file ends: the service stops by itself
        sub.drain(quiet_s=0.3)
        assert code == 0, svc.stderr[-2000:]
        assert not svc.leftovers()
    keywords = [e for e in sub.events if e["type"] == "keyword"]
    assert len(keywords) == len(BURSTS_S), f"{sent} SIGHUPs changed detection: {len(keywords)} keyword events"
    seqs = [e["seq"] for e in sub.events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert "Traceback" not in svc.stderr


@pytest.mark.parametrize("delay_s", [0.0, 0.05, 0.15, 0.3, 0.6, 1.0, 2.0, "ready"])
def test_sigterm_at_each_startup_stage_exits_clean(tmp_path, tiny_model_path, delay_s):
    wav = tmp_path / "long.wav"
    soundfile.write(wav, np.zeros(60 * SAMPLE_RATE_HZ, np.float32), SAMPLE_RATE_HZ, subtype="PCM_16")
    with Service(file_config(tiny_model_path, wav), tmp_path, wait_for_subscriber_s=0) as svc:
        if delay_s == "ready":
            svc.wait_ready()
        else:
            time.sleep(delay_s)
        kids = children_of(svc.proc.pid)
        svc.signal(signal.SIGTERM)
        code = svc.wait(10)
        assert code in CLEAN_EXIT_CODES, f"exit {code}; stderr:\n{svc.stderr[-2000:]}"
        assert "Traceback" not in svc.stderr, svc.stderr[-2000:]
        assert not svc.leftovers(), f"left behind: {svc.leftovers()}"
        time.sleep(0.2)
        assert not any(_alive(pid) for pid in kids), f"child processes left: {kids}"


# SIGTERM raised by the service's own process at a chosen point of start-up: the windows that a timed
# signal from outside (above) hits only by luck, e.g. after the event socket is bound and before run().
SIGTERM_DURING_STARTUP = """
import logging, os, signal, sys
import streamd.service as service
from streamd.config import load_config

stage = sys.argv[2]
logging.basicConfig(level=logging.INFO, format="%(message)s")
if stage == "between_binds":
    bind_control = service.ControlServer
    def control_server(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return bind_control(*args, **kwargs)
    service.ControlServer = control_server
svc = service.Service(load_config(sys.argv[1]), None)
if stage == "before_run":
    os.kill(os.getpid(), signal.SIGTERM)
for source in svc.sources:  # say what run() opens; with no stop pending, the first start asks for one
    def start(source=source, start=source.start):
        print("source started", flush=True)
        start()
        if stage == "no_stop_pending":
            os.kill(os.getpid(), signal.SIGTERM)
    source.start = start
ready = service.sdnotify.ready
service.sdnotify.ready = lambda status: (print("ready", flush=True), ready(status))
os._exit(svc.run())
"""


@pytest.mark.parametrize("stage", ["between_binds", "before_run", "no_stop_pending"])
def test_sigterm_between_binding_and_running_removes_the_ipc_files(tmp_path, tiny_model_path, stage):
    """A stop asked for during start-up: exit 0, no ipc file left, and no source started nor READY sent
    (the microphone is never opened). The control case, no stop pending, starts and announces."""
    wav = tmp_path / "long.wav"
    soundfile.write(wav, np.zeros(60 * SAMPLE_RATE_HZ, np.float32), SAMPLE_RATE_HZ, subtype="PCM_16")
    svc = Service(file_config(tiny_model_path, wav), tmp_path)
    try:
        done = subprocess.run([sys.executable, "-c", SIGTERM_DURING_STARTUP, str(svc.config_path), stage],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
    finally:
        svc.close()
    assert done.returncode == 0, f"exit {done.returncode}; stderr:\n{done.stderr[-2000:]}"
    assert not svc.leftovers(), f"left behind: {svc.leftovers()}"
    opened = done.stdout.split()
    if stage == "no_stop_pending":
        assert done.stdout == "source started\nready\n", done.stdout
    else:
        assert "started" not in opened and "ready" not in opened, done.stdout
        assert "during start-up, before any source started" in done.stderr, done.stderr[-2000:]


def test_second_sigterm_forces_a_bounded_exit(tmp_path, tiny_model_path):
    wav = tmp_path / "long.wav"
    soundfile.write(wav, np.zeros(60 * SAMPLE_RATE_HZ, np.float32), SAMPLE_RATE_HZ, subtype="PCM_16")
    with Service(file_config(tiny_model_path, wav), tmp_path, wait_for_subscriber_s=0) as svc:
        svc.wait_ready()
        t0 = time.monotonic()
        svc.signal(signal.SIGTERM)
        svc.signal(signal.SIGTERM)
        code = svc.wait(10)
        assert time.monotonic() - t0 < 5.0, f"two SIGTERMs took {time.monotonic() - t0:.1f} s (exit {code})"
        assert "Traceback" not in svc.stderr, svc.stderr[-2000:]
        assert not svc.leftovers()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
