"""inputs[].device_sample_rate_hz: the microphone opens at that rate and the ring still holds the played
signal at the model rate (a virtual PulseAudio microphone; PulseAudio converts the 16 kHz sink to 48 kHz)."""

import time

import numpy as np
import soundfile

from streamd.sources import open_source

MODEL_RATE_HZ = 16000
DEVICE_RATE_HZ = 48000


def _wait_for(predicate, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_capture_at_48_khz_device_rate_yields_the_played_signal_at_16_khz(vmic, tmp_path):
    rng = np.random.default_rng(11)
    t = np.arange(MODEL_RATE_HZ) / MODEL_RATE_HZ
    # a chirp (misalignment shows) plus noise kept below 7 kHz: what PulseAudio's and our resamplers both pass
    noise = np.convolve(rng.standard_normal(len(t)), np.hanning(5) / np.hanning(5).sum(), "same")
    played = (0.3 * np.sin(2 * np.pi * (200 + 3000 * t) * t) + 0.1 * noise).astype(np.float32)
    path = tmp_path / "known.wav"
    soundfile.write(path, played, MODEL_RATE_HZ, subtype="PCM_16")
    played = soundfile.read(path, dtype="float32")[0]

    mic = open_source("mic", "m48", MODEL_RATE_HZ, device_rate_hz=DEVICE_RATE_HZ)
    mic.start()
    try:
        assert _wait_for(lambda: mic.ring.end_index >= 1600, 10.0), "no audio from the virtual mic"
        notes = mic.drain_notes()
        assert [n.kind for n in notes] == ["device_opened"] and notes[0].detail["device_rate_hz"] == DEVICE_RATE_HZ
        assert mic.counters()["device_rate_hz"] == DEVICE_RATE_HZ

        start = mic.ring.end_index
        t_start = time.monotonic()
        vmic.play(path)
        played_end = mic.ring.end_index
        # the null sink's monitor may deliver up to ~2 s after paplay returns on a loaded machine
        assert _wait_for(lambda: mic.ring.end_index - played_end >= 2 * MODEL_RATE_HZ, 10.0)
        wall_s = time.monotonic() - t_start
        captured = mic.ring.read(start, mic.ring.end_index - start)
    finally:
        mic.stop()
    # the ring runs at the model rate: samples in ~ wall time x 16 kHz (not x 48 kHz)
    assert 0.8 * wall_s * MODEL_RATE_HZ < len(captured) < 1.2 * wall_s * MODEL_RATE_HZ + MODEL_RATE_HZ
    corr = np.correlate(captured, played, "valid")
    lag = int(np.argmax(np.abs(corr)))
    correlation = float(np.corrcoef(captured[lag : lag + len(played)], played)[0, 1])
    assert correlation > 0.99, correlation
    assert mic.counters()["callback_errors"] == 0 and mic.counters()["nonfinite_samples"] == 0
