"""Capture through a real (virtual) microphone: PulseAudio null sink -> PortAudio -> ring."""

import time

import numpy as np
import pytest
import soundfile

from streamd.sources import open_source

MODEL_RATE_HZ = 16000


def _wait_for(predicate, timeout_s, source=None, notes=None):
    """Poll until predicate() is true; collect the source's notes meanwhile."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if source is not None:
            notes.extend(source.drain_notes())
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def known_wav(tmp_path):
    """1 s: a chirp plus noise, 16 kHz 16-bit, so that any misalignment shows in the correlation."""
    rng = np.random.default_rng(7)
    t = np.arange(MODEL_RATE_HZ) / MODEL_RATE_HZ
    audio = 0.3 * np.sin(2 * np.pi * (200 + 3000 * t) * t) + 0.1 * rng.standard_normal(len(t))
    path = tmp_path / "known.wav"
    soundfile.write(path, audio.astype(np.float32), MODEL_RATE_HZ, subtype="PCM_16")
    return path, soundfile.read(path, dtype="float32")[0]


@pytest.fixture
def mic(vmic):
    source = open_source("mic", "kitchen", MODEL_RATE_HZ, ring_seconds=30.0)
    source.start()
    notes = []
    assert _wait_for(lambda: source.ring.end_index >= 1600, 5.0, source, notes), "no audio from the virtual mic"
    assert [n.kind for n in notes] == ["device_opened"]
    yield source
    source.stop()


def _best_alignment(captured, played):
    corr = np.correlate(captured, played, "valid")
    lag = int(np.argmax(np.abs(corr)))
    return lag, float(np.corrcoef(captured[lag : lag + len(played)], played)[0, 1])


def _play_and_align(vmic, mic, path, played):
    """Play the file through the virtual mic; (lag, correlation) of the played audio in what was captured.
    The null sink's monitor may deliver up to ~2 s after paplay returns (more on a loaded machine; once in a
    full suite, after a device was reopened, the played audio was not found 2 s past playback: not reproduced
    in 20 runs, loaded or not, so a late monitor is the likely cause), so capture goes on 2 s past the end of
    playback before the search, and up to 6 s while the played audio is not found."""
    start = mic.ring.end_index
    vmic.play(path)
    played_end = mic.ring.end_index
    for past_end_s in (2, 4, 6):
        assert _wait_for(lambda: mic.ring.end_index - played_end >= past_end_s * MODEL_RATE_HZ, 10.0)
        lag, correlation = _best_alignment(mic.ring.read(start, mic.ring.end_index - start), played)
        if correlation > 0.99:
            break
    return lag, correlation


def test_capture_hears_what_is_played(vmic, mic, known_wav):
    path, played = known_wav
    lag, correlation = _play_and_align(vmic, mic, path, played)
    assert correlation > 0.99
    assert lag < 0.5 * MODEL_RATE_HZ  # arrived within half a second of paplay starting
    counters = mic.counters()
    assert counters["device_rate_hz"] == MODEL_RATE_HZ and counters["callback_errors"] == 0


@pytest.mark.parametrize("block_s, frames", [(None, 160), (0.02, 320)])
def test_capture_arrives_in_blocks_of_the_asked_size(vmic, block_s, frames):
    """PortAudio hands over block_s of audio per callback (default capture.BLOCK_S, 10 ms), not what the host
    likes: through PulseAudio, "low" latency alone meant ~600 callbacks a second of ~27 frames, and the
    service took 11 % of a core."""
    source = open_source("mic", "kitchen", MODEL_RATE_HZ, block_s=block_s)
    source.start()
    try:
        assert _wait_for(lambda: source.ring.end_index >= 1600, 5.0), "no audio from the virtual mic"
        steps, last = [], source.ring.end_index
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            now = source.ring.end_index
            if now != last:
                steps.append(now - last)
                last = now
            time.sleep(0.001)
    finally:
        source.stop()
    assert len(steps) >= 10 and all(step % frames == 0 for step in steps), steps[:20]


def test_the_config_block_reaches_the_microphone(vmic):
    from streamd.config import config_from_dict
    from streamd.service import open_sources

    [source] = open_sources(config_from_dict({"inputs": [{"source": "mic", "block_ms": 20}]}), MODEL_RATE_HZ, False)
    assert source.block_s == 0.02


def test_removed_device_is_reported_and_reopened(vmic, mic, known_wav):
    path, played = known_wav
    notes = []
    vmic.remove_device()
    assert _wait_for(lambda: any(n.kind == "device_lost" for n in notes), 6.0, mic, notes)
    lost_at = mic.ring.end_index
    time.sleep(1.0)
    assert mic.ring.end_index - lost_at < 800  # nothing (beyond a callback in flight) while it is gone
    assert mic.counters()["connected"] is False

    vmic.restore_device()
    assert _wait_for(lambda: any(n.kind == "device_reopened" for n in notes), 10.0, mic, notes)
    assert [n.kind for n in notes] == ["device_lost", "device_reopened"]
    assert notes[1].detail["downtime_s"] > 1.0 and mic.counters()["reopens"] == 1

    resumed = mic.ring.end_index
    assert _wait_for(lambda: mic.ring.end_index - resumed >= MODEL_RATE_HZ // 2, 5.0), "samples not flowing"
    _, correlation = _play_and_align(vmic, mic, path, played)
    assert correlation > 0.99


def test_sound_server_restart_is_survived(vmic, mic):
    notes = []
    vmic.restart_server(down_s=0.5)
    assert _wait_for(lambda: any(n.kind == "device_reopened" for n in notes), 15.0, mic, notes)
    assert [n.kind for n in notes] == ["device_lost", "device_reopened"]
    resumed = mic.ring.end_index
    assert _wait_for(lambda: mic.ring.end_index - resumed >= MODEL_RATE_HZ // 2, 5.0), "samples not flowing"


def test_unknown_device_name_keeps_retrying_and_says_so(vmic):
    source = open_source("mic", "attic", MODEL_RATE_HZ, device="no such microphone")
    source.start()
    notes = []
    try:
        assert _wait_for(lambda: notes, 3.0, source, notes)
        assert notes[0].kind == "device_lost"
        assert "no input device matches 'no such microphone'" in notes[0].message
        assert source.counters()["connected"] is False
    finally:
        source.stop()


def test_device_by_name_substring(vmic):
    source = open_source("mic", "by-name", MODEL_RATE_HZ, device="pulse")
    source.start()
    try:
        assert _wait_for(lambda: source.ring.end_index >= 1600, 5.0)
        assert source.counters()["device"] == "pulse"
    finally:
        source.stop()


def test_virtual_mic_says_when_its_daemon_died(vmic):
    """The test tool itself: a pactl that cannot connect names the daemon's fate and log, so a CI failure
    from a dead sound server reads as that, not as a service fault."""
    assert "Server String" in vmic.pactl("info")  # connected before the kill
    vmic._daemon.kill()
    vmic._daemon.wait(5)
    with pytest.raises(RuntimeError, match=r"(?s)Connection refused.*pulseaudio exited with -9; its log ends"):
        vmic.pactl("unload-module", "1")


def test_no_default_input_device_is_said_plainly(monkeypatch):
    """Without a sound server or card PortAudio has no default input and says "Error querying device -1";
    the service's note says what is missing and what to set."""
    from types import SimpleNamespace

    import sounddevice as sd

    from streamd import capture

    devices = [{"name": "HDMI out", "max_input_channels": 0, "index": 0}]

    def query_devices(device=None, kind=None):
        if kind == "input":
            raise sd.PortAudioError("Error querying device -1")
        return devices

    # a stand-in for the module, not a patch of its defaults: sounddevice would keep a default set and restored
    fake = SimpleNamespace(default=SimpleNamespace(device=[-1, -1]), query_devices=query_devices,
                           PortAudioError=sd.PortAudioError)
    monkeypatch.setattr(capture, "sd", fake)
    with pytest.raises(ValueError, match=r"^no input device at all \(no microphone, or no sound server to reach\)$"):
        capture._resolve_device(None)
    devices.append({"name": "USB mic", "max_input_channels": 1, "index": 1})
    with pytest.raises(ValueError, match=r"^no default input device; set inputs\[\]\.device to one of 'USB mic'$"):
        capture._resolve_device(None)
