"""Synthetic cuckoo clocks: a sound of the user's own, to show and measure adding a tag (`new_tags:`).

A cuckoo clock calls the hour: 1-12 calls, one every 0.9-1.4 s, each two notes a minor or major third apart
(the first 550-850 Hz, 0.2-0.35 s; the second 0.25-0.45 s after a 0.05-0.15 s gap), blown through two small
pipes: a near-sine with weak overtones, a breathy noise around the pitch, soft attacks, and the pitch sagging a
little as the bellows empty; half the clocks click before each call (the door, the bird). The shipped model's
training data hold its nearest look-alike as a negative: the two-note door chime of `export.data.synth_alarms`
(struck, decaying bell partials, one ding-dong). Label `cuckoo`; a clip's audio depends on (seed, its index).

    python -m export.data.synth_cuckoo --count 400 --seed 0 --out ~/.cache/streamd/synth/cuckoo
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.data import generator_cli
from export.data.audio import cache_root
from export.data.manifest import Clip

SAMPLE_RATE_HZ = 16000
LABEL = "cuckoo"
THIRDS = (1.19, 1.26)  # minor, major: the first note over the second


def pipe_note(n: int, f_hz: float, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """One blown note of n samples: sine, weak overtones, breath noise near the pitch, soft edges, a small sag."""
    t = np.arange(n) / sample_rate_hz
    f = f_hz * (1 - rng.uniform(0, 0.03) * t / max(t[-1], 1e-9))  # the bellows empty
    phase = 2 * np.pi * np.cumsum(f) / sample_rate_hz
    tone = np.sin(phase) + rng.uniform(0.05, 0.2) * np.sin(2 * phase) + rng.uniform(0, 0.08) * np.sin(3 * phase)
    breath = np.convolve(rng.standard_normal(n), np.ones(8) / 8, mode="same") * np.sin(phase + rng.uniform(0, 6.3))
    attack, release = int(rng.uniform(0.015, 0.04) * sample_rate_hz), int(rng.uniform(0.03, 0.07) * sample_rate_hz)
    edges = np.minimum(1.0, np.minimum(np.arange(n) / max(attack, 1), np.arange(n)[::-1] / max(release, 1)))
    return (tone + rng.uniform(0.05, 0.25) * breath) * edges


def cuckoo(n: int, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """One clock calling within n samples (at least one call, as many of its 1-12 as fit)."""
    audio = np.zeros(n)
    first_hz, third = rng.uniform(550, 850), rng.choice(THIRDS)
    period_s, clicks = rng.uniform(0.9, 1.4), rng.random() < 0.5
    on1_s, gap_s, on2_s = rng.uniform(0.2, 0.35), rng.uniform(0.05, 0.15), rng.uniform(0.25, 0.45)
    start_s = rng.uniform(0.05, 1.0)
    for call in range(int(rng.integers(1, 13))):
        at_s = start_s + call * period_s * rng.uniform(0.97, 1.03)
        if call and (at_s + on1_s + gap_s + on2_s) * sample_rate_hz > n:
            break
        level = rng.uniform(0.8, 1.0)
        for offset_s, length_s, f_hz in ((0.0, on1_s, first_hz), (on1_s + gap_s, on2_s, first_hz / third)):
            a = int((at_s + offset_s) * sample_rate_hz)
            note = pipe_note(int(length_s * sample_rate_hz), f_hz, sample_rate_hz, rng)[: max(0, n - a)]
            audio[a:a + len(note)] += level * note
        if clicks:
            a = max(0, int((at_s - rng.uniform(0.05, 0.15)) * sample_rate_hz))
            n_click = int(0.006 * sample_rate_hz)
            click = rng.standard_normal(n_click) * np.exp(-np.arange(n_click) / 20)
            audio[a:a + len(click)] += rng.uniform(0.1, 0.4) * click[: n - a]
    return audio / max(np.abs(audio).max(), 1e-9) * 0.5


def default_out_dir(seed: int = 0) -> Path:
    return cache_root() / "synth_cuckoo" / f"seed{seed}"


def generate(out_dir: str | Path, count: int, seconds: float = 6.0, seed: int = 0,
             sample_rate_hz: int = SAMPLE_RATE_HZ) -> list[Clip]:
    """count clips labelled `cuckoo` and out_dir/manifest.csv."""
    return generator_cli.write_clips(out_dir, count, seconds, seed, sample_rate_hz, lambda i, rng: (
        f"{LABEL}/{LABEL}_{i:05d}.wav", (LABEL,), cuckoo(int(seconds * sample_rate_hz), sample_rate_hz, rng)))


def main(argv: list[str] | None = None) -> None:
    clips, out, _ = generator_cli.run(__doc__, generate, default_out_dir, argv, count=400, seconds=6.0)
    print(f"{len(clips)} clips -> {out}/manifest.csv")


if __name__ == "__main__":
    main()
