"""Synthetic music: negatives for the keywords, `speech` and `smoke_alarm`.

None of the real recordings in ../shared/data is music (UrbanSound8K's street_music aside), so a
model trained on them has never heard a sustained melody: the shipped model called synthetic music
`speech` (mean score 0.63) and fired `go` 90 times an hour on it. This module writes pieces that have
what music has and those labels must ignore: a key and a chord progression, a bass line, a melody of
held pitched notes (pluck, organ, saw lead, bell, or a sung vowel: a glottal pulse train through
vowel formants, with vibrato), and drums, at 60-170 beats per minute.

It is not real music (no lyrics, no recorded instruments), so it teaches tonal, rhythmic sound as a
negative and measures how a model reacts to it; it does not replace hours of real music.

    python -m export.data.synth_music --out DIR --count 120 --seconds 15 --seed 0

writes DIR/noise/music/music_<i>.flac (labels `noise;music`, so training uses them as background
and negative scenes) and DIR/manifest.csv. The folder is laid out like ../shared/data, so
`python -m export.evaluate MODEL --data DIR --split all --tasks wakeword,alarms` measures false
accepts per hour and smoke-alarm false starts on the music alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from export.data import generator_cli
from export.data.audio import cache_root
from export.data.manifest import Clip

SAMPLE_RATE_HZ = 16000
MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
MINOR = np.array([0, 2, 3, 5, 7, 8, 10])
PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 0), (5, 3, 0, 4), (0, 0, 3, 4), (1, 4, 0, 0))  # scale degrees
TIMBRES = ("pluck", "organ", "saw", "bell", "voice")
# (F1, F2, F3) in Hz of sung vowels a, e, i, o, u
VOWELS_HZ = ((800, 1150, 2900), (400, 1700, 2600), (300, 2200, 3000), (450, 800, 2830), (325, 700, 2530))
RMS_DB = (-35.0, -15.0)  # written level of a piece
PEAK = 0.99


def midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def resonator(audio: np.ndarray, centre_hz: float, bandwidth_hz: float, sample_rate_hz: int) -> np.ndarray:
    """A two-pole resonance (a formant) at centre_hz, unit gain at its peak."""
    r = np.exp(-np.pi * bandwidth_hz / sample_rate_hz)
    theta = 2 * np.pi * centre_hz / sample_rate_hz
    return lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], audio)


def note(pitch_hz: float, seconds: float, timbre: str, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """One held note of a timbre, with its own attack and decay."""
    t = np.arange(int(seconds * sample_rate_hz)) / sample_rate_hz
    release = np.clip((seconds - t) / 0.03, 0, 1)
    vibrato = 1 + (0.006 * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t) * np.clip(t / 0.3, 0, 1)
                   if timbre in ("voice", "saw") else 0)
    phase = 2 * np.pi * pitch_hz * np.cumsum(np.ones_like(t) * vibrato) / sample_rate_hz
    if timbre == "voice":
        pulses = 2 * ((phase / (2 * np.pi)) % 1.0) - 1  # sawtooth as a stand-in for the glottal source
        vowel = VOWELS_HZ[rng.integers(len(VOWELS_HZ))]
        audio = sum(resonator(pulses, f, 80 + 0.05 * f, sample_rate_hz) * g for f, g in zip(vowel, (1.0, 0.6, 0.3)))
        envelope = np.clip(t / 0.06, 0, 1) * release
    else:
        partials = {"pluck": [(k, 0.7 ** k) for k in range(1, 9)], "organ": [(1, 1), (2, 0.6), (3, 0.3), (4, 0.25), (8, 0.1)],
                    "saw": [(k, 1 / k) for k in range(1, 16)], "bell": [(1, 1), (2.76, 0.5), (5.4, 0.25), (8.9, 0.1)]}[timbre]
        audio = sum(a * np.sin(k * phase) for k, a in partials if k * pitch_hz < sample_rate_hz / 2)
        decay_per_s = {"pluck": rng.uniform(3, 8), "organ": 0.0, "saw": rng.uniform(0.5, 2), "bell": rng.uniform(1.5, 4)}[timbre]
        envelope = np.clip(t / (0.005 if timbre in ("pluck", "bell") else 0.03), 0, 1) * np.exp(-decay_per_s * t) * release
    return (audio * envelope).astype(np.float32)


def drum(kind: str, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.25 * sample_rate_hz)) / sample_rate_hz
    if kind == "kick":  # a falling sine
        return (np.sin(2 * np.pi * (45 * t + 120 * (1 - np.exp(-t * 35)) / 35)) * np.exp(-t * 14)).astype(np.float32)
    noise = rng.standard_normal(len(t))
    if kind == "snare":
        return (0.6 * noise * np.exp(-t * 22) + 0.4 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 30)).astype(np.float32)
    return (0.3 * np.diff(noise, prepend=0) * np.exp(-t * 70)).astype(np.float32)  # hi-hat: bright, short


def add_at(out: np.ndarray, audio: np.ndarray, start_s: float, sample_rate_hz: int) -> None:
    start = int(start_s * sample_rate_hz)
    if start < len(out):
        end = min(len(out), start + len(audio))
        out[start:end] += audio[: end - start]


def make_piece(seconds: float, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """A piece: chords, bass, melody and (usually) drums, scaled to a random RMS in RMS_DB."""
    out = np.zeros(int(seconds * sample_rate_hz), np.float32)
    beat_s = 60.0 / rng.uniform(60, 170)
    tonic = int(rng.integers(45, 57))  # A2..G#3
    scale = MAJOR if rng.random() < 0.6 else MINOR
    progression = PROGRESSIONS[rng.integers(len(PROGRESSIONS))]
    chord_timbre, melody_timbre = rng.choice(TIMBRES[:4]), rng.choice(TIMBRES)

    def degree(d: int, octave: int = 0) -> float:
        return tonic + scale[d % 7] + 12 * (d // 7 + octave)

    bar_s, bar = 4 * beat_s, 0
    while bar * bar_s < seconds:
        root = progression[bar % len(progression)]
        for d in (root, root + 2, root + 4):  # a triad, one octave up
            add_at(out, 0.12 * note(midi_hz(degree(d, 1)), bar_s, chord_timbre, sample_rate_hz, rng), bar * bar_s, sample_rate_hz)
        for b in range(4):  # bass on every beat
            add_at(out, 0.25 * note(midi_hz(degree(root, -1)), beat_s, "pluck", sample_rate_hz, rng), (bar * 4 + b) * beat_s, sample_rate_hz)
        bar += 1
    t, d = 0.0, int(rng.integers(7))
    while t < seconds:  # a melody that moves by small steps, two octaves above the tonic
        length_s = beat_s * rng.choice([0.5, 1, 1, 1, 2, 3])
        d = int(np.clip(d + rng.integers(-2, 3), 0, 9))
        if rng.random() < 0.85:
            add_at(out, 0.3 * note(midi_hz(degree(d, 2)), length_s, melody_timbre, sample_rate_hz, rng), t, sample_rate_hz)
        t += length_s
    if rng.random() < 0.7:
        for i in range(int(seconds / beat_s * 2) + 1):  # eighth notes
            kind = "kick" if i % 4 == 0 else "snare" if i % 4 == 2 else "hat"
            add_at(out, 0.5 * drum(kind, sample_rate_hz, rng), i * beat_s / 2, sample_rate_hz)
    rms = float(np.sqrt(np.mean(out ** 2))) + 1e-12
    out *= np.float32(10 ** (rng.uniform(*RMS_DB) / 20) / rms)
    return (out * min(1.0, PEAK / float(np.abs(out).max()))).astype(np.float32)  # drums can peak high: scale back, never clip


def default_out_dir(seed: int = 0) -> Path:
    return cache_root() / "synth_music" / f"seed{seed}"


def generate(out_dir: str | Path, count: int, seconds: float = 15.0, seed: int = 0,
             sample_rate_hz: int = SAMPLE_RATE_HZ) -> list[Clip]:
    """count pieces under out_dir/noise/music/ plus out_dir/manifest.csv; piece i depends only on (seed, i)."""
    return generator_cli.write_clips(out_dir, count, seconds, seed, sample_rate_hz, lambda i, rng: (
        f"noise/music/music_{seed}_{i:05d}.flac", ("noise", "music"), make_piece(seconds, sample_rate_hz, rng)))


def main(argv: list[str] | None = None) -> None:
    clips, out, seconds = generator_cli.run(__doc__, generate, default_out_dir, argv, count=120, seconds=15.0,
                                            count_help="pieces", seconds_help="length of each piece")
    print(f"{len(clips)} pieces, {len(clips) * seconds / 60:.1f} min -> {out}/manifest.csv")


if __name__ == "__main__":
    main()
