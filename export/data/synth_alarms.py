"""Synthetic household alarms and their look-alikes, so `smoke_alarm` can be learned without recordings.

Alarms (label `smoke_alarm`, with `kind=`):
* `t3`: smoke, temporal-three (ISO 8201 / NFPA 72): 3 x (0.5 s on, 0.5 s off), then 1.5 s off;
* `t4`: carbon monoxide, temporal-four: 4 x (0.1 s on, 0.1 s off), then 5 s off;
* `chirp`: a piezo low-battery chirp, one short beep;
* `t3low`: the low-frequency alarm (UL 217 / NFPA 72, for sleeping areas): a 520 Hz square wave in the
  temporal-three pattern. Made only when asked for (`--kinds`).
The tone is a piezo horn: fundamental 2.9-3.5 kHz (`--f0-range-hz` widens it) with a slight wobble,
square-ish odd harmonics and a weaker even one (those below Nyquist), and every timing varied by up to +-10%.

Negatives (not model labels; the trainer treats all but `lookalike` as noise): `beep` (microwave/oven beeps 1-2.5 kHz,
phone-ring-like 440+480 Hz bursts), `chime` (two-note door chime, decaying bell partials) and, with
`--squeaks`, `squeak` (hinges and wood: 0.3-1.5 s tones in 0.7-4.5 kHz whose pitch glides by 10-40 %, some
rasping). A squeak can sit right on an alarm's 3 kHz; what tells them apart is the piezo's steady
pitch and rhythm. Squeaks are longer than a low-battery chirp, which is an alarm sound. With
`--piezo-negatives`, `lookalike` clips of kind `piezo`: an alarm's own piezo tone (at `--f0-range-hz`) in
rhythms no alarm uses, steady beeping of 0.15-0.4 s beeps with no group pause (a timer, a reversing truck)
or one or two held tones of 0.8-2.5 s, so that the pattern, not the pitch, tells an alarm. The trainer
draws a `lookalike` as a scene's own sound, never as noise under another (export/data/scenes.py).

    python -m export.data.synth_alarms --out DIR --count 400 --negatives 200 --seconds 5 --seed 0
    python -m export.data.synth_alarms --out DIR --count 0 --negatives 0 --squeaks 60 --seed 0
    python -m export.data.synth_alarms --out DIR --count 400 --negatives 0 --seed 7 \
        --f0-range-hz 2500 4300 --kinds t3,t4,chirp,t3low
    python -m export.data.synth_alarms --out DIR --count 0 --negatives 0 --piezo-negatives 600 --seed 11 \
        --f0-range-hz 2500 4300
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import soundfile as sf

from export.data.audio import cache_root
from export.data.manifest import Clip, write_manifest

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16000
ALARM_KINDS = ("t3", "t4", "chirp")  # what --count draws in turn unless --kinds says otherwise
ALL_ALARM_KINDS = ALARM_KINDS + ("t3low",)
PIEZO_F0_HZ = (2900.0, 3500.0)  # where most household piezo horns sit
LOW_F0_HZ = (500.0, 540.0)  # the low-frequency alarm's 520 Hz, with a part's tolerance
NEGATIVE_KINDS = {"microwave": "beep", "phone": "beep", "door": "chime", "squeak": "squeak", "piezo": "lookalike"}  # kind -> label
CYCLED_NEGATIVES = ("microwave", "phone", "door")  # what --negatives draws in turn (squeaks: --squeaks)
RAMP_S = 0.003  # on/off ramps of a beep, so edges do not click
TIMING_JITTER = 0.1  # relative

# kind -> (beeps per group, on_s, off_s between beeps, off_s after the group)
TEMPORAL = {"t3": (3, 0.5, 0.5, 1.5), "t4": (4, 0.1, 0.1, 5.0), "t3low": (3, 0.5, 0.5, 1.5)}


def pattern(kind: str, seconds: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """(start_s, end_s) of each beep in a clip of `seconds`, timings jittered, starting at a random
    point of the cycle (in the lead-in silence or within the group) so every clip holds a beep."""
    if kind == "chirp":
        on_s = rng.uniform(0.03, 0.12)
        start_s = rng.uniform(0.0, max(0.0, seconds - on_s))
        return [(start_s, start_s + on_s)]
    count, on_s, gap_s, pause_s = TEMPORAL[kind]
    jit = lambda x: x * rng.uniform(1 - TIMING_JITTER, 1 + TIMING_JITTER)
    on_s, gap_s, pause_s = jit(on_s), jit(gap_s), jit(pause_s)  # one device: one timing per clip
    t = rng.uniform(0.0, min(pause_s, 0.5 * seconds))  # lead-in silence
    skip = int(rng.integers(count))  # ... or start mid-group
    beeps, k = [], skip
    while t < seconds:
        beeps.append((t, min(seconds, t + on_s)))
        k += 1
        t += on_s + (pause_s if k % count == 0 else gap_s)
    return beeps


def envelope(beeps: list[tuple[float, float]], n: int, sample_rate_hz: int) -> np.ndarray:
    env = np.zeros(n, dtype=np.float64)
    ramp = max(1, int(RAMP_S * sample_rate_hz))
    for start_s, end_s in beeps:
        a, b = int(round(start_s * sample_rate_hz)), min(n, int(round(end_s * sample_rate_hz)))
        if b - a < 2 * ramp:
            continue
        env[a:b] = 1.0
        env[a:a + ramp] = np.linspace(0, 1, ramp)
        env[b - ramp:b] = np.linspace(1, 0, ramp)
    return env


def piezo_tone(n: int, sample_rate_hz: int, rng: np.random.Generator,
               f0_range_hz: tuple[float, float] = PIEZO_F0_HZ) -> np.ndarray:
    """A piezo horn: f0 in f0_range_hz wobbling by ~0.5%, odd harmonics plus a weak 2nd."""
    t = np.arange(n) / sample_rate_hz
    f0 = rng.uniform(*f0_range_hz)
    wobble = 1 + rng.uniform(0.001, 0.006) * np.sin(2 * np.pi * rng.uniform(3, 15) * t + rng.uniform(0, 6.3))
    phase = 2 * np.pi * np.cumsum(f0 * wobble) / sample_rate_hz
    tone = np.zeros(n)
    for harmonic, level in ((1, 1.0), (2, rng.uniform(0.02, 0.2)), (3, rng.uniform(0.1, 0.33)), (5, 0.2)):
        if harmonic * f0 * 1.01 < sample_rate_hz / 2:
            tone += level * np.sin(harmonic * phase)
    return tone


def square_tone(n: int, sample_rate_hz: int, rng: np.random.Generator,
                f0_range_hz: tuple[float, float] = LOW_F0_HZ) -> np.ndarray:
    """A square wave (odd harmonics at 1/k, those below Nyquist), as the low-frequency alarm's sounder makes."""
    phase = 2 * np.pi * rng.uniform(*f0_range_hz) * np.arange(n) / sample_rate_hz
    tone = np.zeros(n)
    for k in range(1, 64, 2):
        if k * f0_range_hz[1] * 1.01 < sample_rate_hz / 2:
            tone += np.sin(k * phase) / k
    return tone


def make_alarm(kind: str, seconds: float, sample_rate_hz: int, rng: np.random.Generator,
               f0_range_hz: tuple[float, float] = PIEZO_F0_HZ) -> np.ndarray:
    """float32 clip of one alarm kind (ALL_ALARM_KINDS) or negative (NEGATIVE_KINDS), peak -12..-3 dBFS;
    f0_range_hz: where a piezo alarm's fundamental is drawn."""
    return make_alarm_with_beeps(kind, seconds, sample_rate_hz, rng, f0_range_hz)[0]


def make_alarm_with_beeps(kind: str, seconds: float, sample_rate_hz: int, rng: np.random.Generator,
                          f0_range_hz: tuple[float, float] = PIEZO_F0_HZ) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """make_alarm, and the (start_s, end_s) of each beep (empty for negatives): the evaluation's truth."""
    n = int(seconds * sample_rate_hz)
    beeps = []
    if kind in ALL_ALARM_KINDS:
        tone = square_tone(n, sample_rate_hz, rng) if kind == "t3low" else piezo_tone(n, sample_rate_hz, rng, f0_range_hz)
        beeps = pattern(kind, seconds, rng)
        audio = tone * envelope(beeps, n, sample_rate_hz)
    elif kind == "microwave":
        audio = microwave(n, sample_rate_hz, rng)
    elif kind == "phone":
        audio = phone(n, sample_rate_hz, rng)
    elif kind == "door":
        audio = door_chime(n, sample_rate_hz, rng)
    elif kind == "squeak":
        audio = squeaks(n, sample_rate_hz, rng)
    elif kind == "piezo":
        audio = piezo_tone(n, sample_rate_hz, rng, f0_range_hz) * envelope(non_alarm_rhythm(seconds, rng), n, sample_rate_hz)
    else:
        raise ValueError(f"unknown kind {kind!r}; known: {ALL_ALARM_KINDS + tuple(NEGATIVE_KINDS)}")
    peak = 10 ** (rng.uniform(-12, -3) / 20)
    return (audio * peak / max(np.abs(audio).max(), 1e-9)).astype(np.float32), beeps


def non_alarm_rhythm(seconds: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """(start_s, end_s) of beeps in a rhythm no alarm of TEMPORAL uses: half the time steady beeping
    (0.15-0.4 s on, 0.15-0.9 s off, no pause after a group), else one or two held tones of 0.8-2.5 s."""
    if rng.random() < 0.5:
        on_s, off_s = rng.uniform(0.15, 0.4), rng.uniform(0.15, 0.9)
        return [(t, min(seconds, t + on_s)) for t in np.arange(rng.uniform(0, on_s + off_s), seconds, on_s + off_s)]
    beeps, t = [], rng.uniform(0, 0.3 * seconds)
    for _ in range(int(rng.integers(1, 3))):
        held_s = rng.uniform(0.8, 2.5)
        if t < seconds:
            beeps.append((t, min(seconds, t + held_s)))
        t += held_s + rng.uniform(0.5, 1.5)
    return beeps


def microwave(n: int, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """3-5 equal beeps of 1-2.5 kHz, 0.15-0.6 s, nearly pure tone."""
    seconds = n / sample_rate_hz
    on_s, gap_s = rng.uniform(0.15, 0.6), rng.uniform(0.1, 0.4)
    t0 = rng.uniform(0, max(0.0, seconds - 3 * (on_s + gap_s)))
    beeps = [(t0 + i * (on_s + gap_s), t0 + i * (on_s + gap_s) + on_s) for i in range(int(rng.integers(3, 6)))]
    t = np.arange(n) / sample_rate_hz
    f0 = rng.uniform(1000, 2500)
    tone = np.sin(2 * np.pi * f0 * t) + rng.uniform(0, 0.1) * np.sin(6 * np.pi * f0 * t)
    return tone * envelope([b for b in beeps if b[0] < seconds], n, sample_rate_hz)


def phone(n: int, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """Ring-like: 440+480 Hz (or a 20 Hz trill of two tones) in 0.4-2 s bursts."""
    seconds = n / sample_rate_hz
    t = np.arange(n) / sample_rate_hz
    if rng.random() < 0.5:
        tone = np.sin(2 * np.pi * 440 * t) + np.sin(2 * np.pi * 480 * t)
    else:
        f1, f2 = rng.uniform(700, 1500, size=2)
        tone = np.sin(2 * np.pi * np.where(np.sin(2 * np.pi * 20 * t) > 0, f1, f2) * t)
    on_s, off_s = rng.uniform(0.4, 2.0), rng.uniform(0.2, 3.0)
    t0 = rng.uniform(0, 0.5 * seconds)
    beeps = [(s, s + on_s) for s in np.arange(t0, seconds, on_s + off_s)]
    return tone * envelope(beeps, n, sample_rate_hz)


def door_chime(n: int, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """Ding-dong: two struck notes with inharmonic bell partials, exponential decay."""
    seconds = n / sample_rate_hz
    t = np.arange(n) / sample_rate_hz
    first_hz = rng.uniform(500, 900)
    notes = [first_hz, first_hz / rng.choice([1.26, 1.335, 1.5])]  # third, fourth or fifth down
    start_s = rng.uniform(0, 0.4 * seconds)
    audio = np.zeros(n)
    for i, f in enumerate(notes):
        onset = start_s + i * rng.uniform(0.4, 0.9)
        tt = np.clip(t - onset, 0, None)
        decay = np.exp(-tt / rng.uniform(0.3, 1.2)) * (t >= onset)
        for ratio, level in ((1.0, 1.0), (2.0, 0.3), (2.76, 0.15), (5.4, 0.05)):
            if ratio * f < sample_rate_hz / 2:
                audio += level * decay * np.sin(2 * np.pi * ratio * f * tt)
    return audio


def squeak(n: int, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """One squeak filling n samples: a harmonic tone around 0.7-4.5 kHz whose pitch glides and bends by
    10-40 % over its length (a piezo holds its pitch within 1 %; 10 % is a few mel bands at 3 kHz),
    under a slow swell and, half the time, the stick-slip rasp of wood or a dry hinge (pulses at 20-120 Hz)."""
    t = np.arange(n) / sample_rate_hz
    u = t / max(t[-1], 1e-9)
    contour = rng.uniform(-1, 1) * u + rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * rng.uniform(0.3, 2.0) * u + rng.uniform(0, 6.3))
    contour = (contour - contour.min()) / max(np.ptp(contour), 1e-9)  # 0..1
    f_hz = np.exp(rng.uniform(np.log(700), np.log(4500))) * np.exp(np.log1p(rng.uniform(0.1, 0.4)) * contour)
    phase = 2 * np.pi * np.cumsum(f_hz) / sample_rate_hz
    tone = np.zeros(n)
    for harmonic in range(1, 6):
        level = rng.uniform(0.05, 0.5) ** (harmonic - 1)
        tone += np.where(harmonic * f_hz < 0.95 * sample_rate_hz / 2, level * np.sin(harmonic * phase), 0.0)
    ramp_s = rng.uniform(0.02, 0.15)
    swell = np.clip(np.minimum(t, t[-1] - t) / ramp_s, 0, 1) * (1 + rng.uniform(0, 0.5) * np.sin(2 * np.pi * rng.uniform(1, 6) * t))
    if rng.random() < 0.5:
        depth = rng.uniform(0.3, 0.9)
        pulses = np.maximum(0.0, np.sin(2 * np.pi * np.cumsum(np.full(n, rng.uniform(20, 120))) / sample_rate_hz)) ** 4
        swell = swell * (1 - depth + depth * pulses)
    return tone * swell


def squeaks(n: int, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """1-4 squeaks of 0.3-1.5 s at random times, each its own pitch and glide."""
    audio = np.zeros(n)
    for _ in range(int(rng.integers(1, 5))):
        length = min(n, int(rng.uniform(0.3, 1.5) * sample_rate_hz))
        start = int(rng.integers(n - length + 1))
        audio[start:start + length] += rng.uniform(0.3, 1.0) * squeak(length, sample_rate_hz, rng)
    return audio


def default_out_dir(seed: int = 0) -> Path:
    return cache_root() / "synth_alarms" / f"seed{seed}"


def generate(out_dir: str | Path, count: int, negatives: int, seconds: float = 5.0, seed: int = 0,
             sample_rate_hz: int = SAMPLE_RATE_HZ, squeak_count: int = 0, kinds: tuple[str, ...] = ALARM_KINDS,
             f0_range_hz: tuple[float, float] = PIEZO_F0_HZ, piezo_negatives: int = 0) -> list[Clip]:
    """count alarm clips (`kinds` in turn), `negatives` beep/chime clips, `squeak_count` squeak clips and
    `piezo_negatives` piezo beeps in non-alarm rhythms, plus out_dir/manifest.csv. A clip's audio depends on
    (seed, its index, kinds, f0_range_hz) only."""
    unknown = [k for k in kinds if k not in ALL_ALARM_KINDS]
    if unknown or not kinds:
        raise ValueError(f"alarm kinds {unknown or '(none)'}: choose from {list(ALL_ALARM_KINDS)}")
    out_dir = Path(out_dir).resolve()
    plan = [(kinds[i % len(kinds)], i) for i in range(count)]
    plan += [(CYCLED_NEGATIVES[i % len(CYCLED_NEGATIVES)], count + i) for i in range(negatives)]
    plan += [("squeak", count + negatives + i) for i in range(squeak_count)]
    plan += [("piezo", count + negatives + squeak_count + i) for i in range(piezo_negatives)]
    clips = []
    for kind, i in plan:
        rng = np.random.default_rng([seed, i])
        label = "smoke_alarm" if kind in ALL_ALARM_KINDS else NEGATIVE_KINDS[kind]
        path = out_dir / label / f"{kind}_{i:05d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), make_alarm(kind, seconds, sample_rate_hz, rng, f0_range_hz), sample_rate_hz, subtype="PCM_16")
        clips.append(Clip(path=path, labels=(label, f"kind={kind}"), duration_s=seconds))
    write_manifest(clips, out_dir / "manifest.csv")
    return clips


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="output folder (default: $STREAMD_CACHE/synth_alarms/seed<S>)")
    p.add_argument("--count", type=int, default=400, help="alarm clips (--kinds in turn)")
    p.add_argument("--kinds", default=",".join(ALARM_KINDS),
                   help=f"comma-separated alarm kinds of {','.join(ALL_ALARM_KINDS)} (default %(default)s)")
    p.add_argument("--f0-range-hz", type=float, nargs=2, default=PIEZO_F0_HZ, metavar=("LO", "HI"),
                   help="piezo alarms' fundamental is drawn from LO..HI Hz (default %(default)s)")
    p.add_argument("--negatives", type=int, default=200, help="beep/chime clips (microwave, phone, door in turn)")
    p.add_argument("--squeaks", type=int, default=0, help="squeak clips (hinges, wood: gliding tones)")
    p.add_argument("--piezo-negatives", type=int, default=0,
                   help="lookalike clips of an alarm's piezo tone (at --f0-range-hz) in rhythms no alarm uses")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = args.out or default_out_dir(args.seed)
    if not args.f0_range_hz[0] <= args.f0_range_hz[1] or args.f0_range_hz[1] * 1.01 >= SAMPLE_RATE_HZ / 2:
        p.error(f"--f0-range-hz {args.f0_range_hz}: need LO <= HI below {SAMPLE_RATE_HZ / 2 / 1.01:.0f} Hz")
    try:
        clips = generate(out, args.count, args.negatives, args.seconds, args.seed, squeak_count=args.squeaks,
                         kinds=tuple(k.strip() for k in args.kinds.split(",") if k.strip()),
                         f0_range_hz=tuple(args.f0_range_hz), piezo_negatives=args.piezo_negatives)
    except ValueError as err:
        p.error(str(err))
    print(f"{len(clips)} clips -> {out}/manifest.csv")


if __name__ == "__main__":
    main()
