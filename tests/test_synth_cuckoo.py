"""Synthetic cuckoo clocks (export/data/synth_cuckoo.py), the example of a tag of one's own: each clip is calls of
two falling notes a third apart, at a clock's pace, and the same seed makes the same clip."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from export.data import synth_cuckoo as sc
from export.data.manifest import read_manifest

RATE = sc.SAMPLE_RATE_HZ
FRAME = 160  # 10 ms


def notes(audio: np.ndarray) -> list[tuple[float, float, float]]:
    """(start_s, length_s, pitch_hz) of each stretch 20 dB within the loudest 10 ms frame, 0.1 s or longer
    (a click before a call is shorter)."""
    frames = audio[: len(audio) // FRAME * FRAME].reshape(-1, FRAME)
    loud = np.sqrt(np.mean(frames ** 2, axis=1)) > 0.1 * np.sqrt(np.mean(frames ** 2, axis=1)).max()
    edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(int), [0]])))
    out = []
    for a, b in zip(edges[::2], edges[1::2]):
        if (b - a) * FRAME >= 0.1 * RATE:
            part = audio[a * FRAME:b * FRAME]
            spectrum = np.abs(np.fft.rfft(part * np.hanning(len(part)), n=8 * len(part)))
            out.append((a * FRAME / RATE, (b - a) * FRAME / RATE, np.argmax(spectrum) * RATE / (8 * len(part))))
    return out


def test_each_call_is_two_notes_falling_a_third_at_a_clocks_pace():
    for seed in range(8):
        found = notes(sc.cuckoo(6 * RATE, RATE, np.random.default_rng(seed)))
        assert len(found) >= 2 and len(found) % 2 == 0, found
        first, second = found[0::2], found[1::2]
        for (_, _, high), (_, _, low) in zip(first, second):
            assert 540 < high < 860 and 1.15 < high / low < 1.3, found  # a minor or major third down
        highs = [f[2] for f in first]
        assert max(highs) / min(highs) < 1.02, "one clock, one pitch (each note sags by up to 3 % as it ends)"
        starts = np.array([f[0] for f in first])
        if len(starts) > 1:  # one call every 0.9-1.4 s, within the 3 % each call drifts
            assert np.all((np.diff(starts) > 0.85) & (np.diff(starts) < 1.5)), found


def test_generate_writes_labelled_clips_that_depend_on_seed_and_index_only(tmp_path):
    clips = sc.generate(tmp_path / "a", 3, seconds=4.0, seed=5)
    again = sc.generate(tmp_path / "b", 2, seconds=4.0, seed=5)
    other = sc.generate(tmp_path / "c", 1, seconds=4.0, seed=6)
    assert [c.labels for c in read_manifest(tmp_path / "a" / "manifest.csv")] == [("cuckoo",)] * 3
    audio = [sf.read(c.path)[0] for c in clips]
    assert all(len(a) == 4 * RATE and 0.45 < np.abs(a).max() <= 0.5 for a in audio)
    np.testing.assert_array_equal(audio[1], sf.read(again[1].path)[0])
    assert not np.array_equal(audio[0], sf.read(other[0].path)[0])
