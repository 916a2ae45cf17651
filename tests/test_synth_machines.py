"""Synthetic machine sounds (export/data/synth_machines.py): each kind has the mechanism it claims."""

from __future__ import annotations

import numpy as np
import pytest

from export.data import synth_machines as sm
from export.data.manifest import read_manifest

RATE = sm.SAMPLE_RATE_HZ


def frames(audio: np.ndarray, frame: int) -> np.ndarray:
    return audio[: len(audio) // frame * frame].reshape(-1, frame)


def frame_rms(audio: np.ndarray, frame: int) -> np.ndarray:
    return np.sqrt(np.mean(frames(audio, frame) ** 2, axis=1))


def peak_track_hz(audio: np.ndarray, frame: int = 1024) -> np.ndarray:
    """The loudest frequency of each frame within 20 dB of the loudest frame."""
    f = frames(audio, frame)
    loud = f[np.sqrt(np.mean(f ** 2, axis=1)) > 0.1 * np.sqrt(np.mean(f ** 2, axis=1)).max()]
    return np.argmax(np.abs(np.fft.rfft(loud * np.hanning(frame), n=4 * frame)), axis=1) * RATE / (4 * frame)


def centroid_hz(audio: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(audio)) ** 2
    return float(np.sum(np.fft.rfftfreq(len(audio), 1 / RATE) * power) / np.sum(power))


@pytest.mark.parametrize("kind", list(sm.KINDS))
def test_every_kind_is_deterministic_and_at_its_level(kind):
    for seed in range(3):
        audio = sm.make_machine(kind, 3.0, RATE, np.random.default_rng(seed))
        again = sm.make_machine(kind, 3.0, RATE, np.random.default_rng(seed))
        assert audio.dtype == np.float32 and len(audio) == 3 * RATE
        np.testing.assert_array_equal(audio, again)
        assert np.abs(audio).max() <= sm.PEAK + 1e-6
        rms_db = 20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
        assert sm.RMS_DB[0] - 25 <= rms_db <= sm.RMS_DB[1] + 0.1, (kind, seed)  # lower only where peak-limited
    with pytest.raises(ValueError, match="unknown machine kind"):
        sm.make_machine("kettle", 1.0, RATE, np.random.default_rng(0))


@pytest.mark.parametrize("kind", ["wail", "yelp", "hilo"])
def test_sirens_sweep_or_step_within_their_band(kind):
    for seed in range(4):
        track = peak_track_hz(sm.make_machine(kind, 6.0, RATE, np.random.default_rng(seed)))
        fundamental = track[track < 2000]  # a harmonic may be the loudest in some frames
        assert np.median(fundamental) > 400, (kind, seed)
        low, high = np.percentile(fundamental, [5, 95])
        assert high / low > 1.1, (kind, seed)  # the pitch moves: a siren, not a beep


def test_hilo_holds_two_pitches():
    for seed in range(4):
        track = peak_track_hz(sm.make_machine("hilo", 6.0, RATE, np.random.default_rng(seed)), frame=512)
        track = track[track < 1100]
        low, high = track.min(), track.max()
        near_either = (np.abs(track - low) < 40) | (np.abs(track - high) < 40)
        assert near_either.mean() > 0.8, seed


def test_jackhammer_strikes_15_to_28_times_a_second():
    for seed in range(4):
        audio = sm.make_machine("jackhammer", 4.0, RATE, np.random.default_rng(seed))
        env = frame_rms(audio, 80)  # 5 ms frames: the envelope up to 100 Hz
        power = np.abs(np.fft.rfft(env - env.mean(), n=8 * len(env))) ** 2
        freqs_hz = np.fft.rfftfreq(8 * len(env), 80 / RATE)
        band = (freqs_hz > 8) & (freqs_hz < 90)
        rate_hz = freqs_hz[band][np.argmax(power[band])]
        assert 14 < rate_hz < 29, (seed, rate_hz)


def test_engine_is_low_and_air_conditioner_steady():
    for seed in range(4):
        engine = sm.make_machine("engine", 4.0, RATE, np.random.default_rng(seed))
        spectrum = np.abs(np.fft.rfft(engine))
        assert np.argmax(spectrum) * RATE / len(engine) < 400, seed
        ac = sm.make_machine("air_conditioner", 4.0, RATE, np.random.default_rng(seed))
        rms = frame_rms(ac, RATE // 10)
        assert rms.std() / rms.mean() < 0.25, seed  # no on/off: it runs


def test_drill_grinds_high_and_horn_honks():
    for seed in range(4):
        drill = sm.make_machine("drilling", 4.0, RATE, np.random.default_rng(seed))
        assert centroid_hz(drill) > 1000, seed
        horn = sm.make_machine("car_horn", 4.0, RATE, np.random.default_rng(seed))
        rms = frame_rms(horn, RATE // 100)  # 10 ms frames
        edges = np.diff(np.concatenate([[0], (rms > 0.1 * rms.max()).astype(int), [0]]))
        honks_s = (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)) / 100
        assert 1 <= len(honks_s) <= 3, seed  # a few honks with silence between, not one long tone
        assert np.all(honks_s <= 1.55), (seed, honks_s)
        assert 300 < np.median(peak_track_hz(horn)) < 3500, seed


def test_generate_cycles_kinds_and_writes_a_manifest(tmp_path):
    clips = sm.generate(tmp_path, count=10, seconds=1.0, seed=3)
    back = read_manifest(tmp_path / "manifest.csv")
    kinds = list(sm.KINDS)
    assert [c.attr("kind") for c in back] == [kinds[i % len(kinds)] for i in range(10)]
    assert [c.label for c in back] == [sm.KINDS[c.attr("kind")] for c in back]
    assert {c.label for c in back} <= {"siren", "car_horn", "jackhammer", "drilling", "engine", "air_conditioner"}
    assert all(c.path.exists() for c in clips)
