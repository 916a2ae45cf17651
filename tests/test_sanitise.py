"""Non-finite and out-of-range input samples: zeroed and clipped before the ring, counted, noted per episode."""

import numpy as np
import soundfile

from streamd.sources import open_source

MODEL_RATE_HZ = 16000


def _run(path, pump_samples=1000):
    source = open_source(f"file:{path}", "s", MODEL_RATE_HZ, fast=True)
    source.start()
    while source.pump(pump_samples):
        pass
    source.stop()
    ring = source.ring
    return source, ring.read(ring.oldest_index, ring.end_index - ring.oldest_index)


def test_bad_samples_are_zeroed_clipped_counted_and_noted_once_per_episode(tmp_path):
    clean = 0.25 * np.sin(2 * np.pi * 440 * np.arange(MODEL_RATE_HZ) / MODEL_RATE_HZ)
    audio = np.concatenate([
        clean,                                  # 0-1 s clean
        np.full(100, np.nan), clean[:400],      # episode 1: 100 NaN ...
        np.full(50, 3.0),                       # ... and 50 over full scale within 2 s: the same episode
        clean, clean, clean,                    # 3 s clean: the episode is over
        np.full(10, -np.inf), np.full(20, -2.0),  # episode 2
        clean,
    ]).astype(np.float32)
    path = tmp_path / "bad.wav"
    soundfile.write(path, audio, MODEL_RATE_HZ, subtype="FLOAT")
    source, got = _run(path)
    assert len(got) == len(audio) and np.all(np.isfinite(got)) and np.abs(got).max() <= 1.0
    expected = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0).clip(-1, 1)
    assert np.array_equal(got, expected)  # at the model rate nothing else changes
    counters = source.counters()
    assert (counters["nonfinite_samples"], counters["clipped_samples"], counters["bad_sample_episodes"]) == (110, 70, 2)
    notes = [n for n in source.drain_notes() if n.kind == "bad_samples"]
    assert len(notes) == 2
    assert notes[0].detail["input_frame"] == MODEL_RATE_HZ and notes[0].detail["nonfinite_samples"] == 100
    assert notes[1].detail["input_frame"] == 4 * MODEL_RATE_HZ + 550 and notes[1].detail["nonfinite_samples"] == 10


def test_a_nan_does_not_poison_the_resampler(tmp_path):
    """At 48 kHz a NaN in the filter history would spread to every later output sample."""
    rate_hz = 48000
    t = np.arange(rate_hz) / rate_hz
    tone = 0.5 * np.sin(2 * np.pi * 300 * t)
    audio = tone.copy()
    audio[1000:1010] = np.nan
    path = tmp_path / "nan48k.wav"
    soundfile.write(path, audio.astype(np.float32), rate_hz, subtype="FLOAT")
    source, got = _run(path, pump_samples=137)
    assert len(got) == MODEL_RATE_HZ and np.all(np.isfinite(got))
    reference_path = tmp_path / "zeroed48k.wav"
    zeroed = tone.copy()
    zeroed[1000:1010] = 0.0
    soundfile.write(reference_path, zeroed.astype(np.float32), rate_hz, subtype="FLOAT")
    _, reference = _run(reference_path)
    assert np.array_equal(got, reference)  # exactly as if the NaNs had been zeros
    assert source.counters()["nonfinite_samples"] == 10 and source.counters()["clipped_samples"] == 0
