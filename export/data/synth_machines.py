"""Synthetic machine sounds for tags whose recordings are few: sirens, car horns, jackhammers, drills,
idling engines and air conditioners.

The shared data holds 2-13 recordings of each of these UrbanSound8K classes, so a model learns those
recordings rather than the sound (docs/data.md, "What limits the tags"). Each of them is made by a
mechanism simple enough to synthesise from its physics, varied over what differs between machines:

* `siren` (`kind=` wail, yelp, hilo): a harmonic-rich tone sweeping 500-1800 Hz, slowly (wail, 2-6 s a
  cycle), fast (yelp, 0.15-0.4 s) or stepping between two pitches (hi-lo); passing by (Doppler shift and
  a rise and fall of level);
* `car_horn`: two tones a third or so apart (350-700 Hz), buzzy, in 1-3 honks of 0.15-1.5 s;
* `jackhammer`: impacts at 12-25 per second, each a few ms of noise ringing at 2-4 resonances with a thump,
  in runs of 0.8-4 s;
* `drilling`: a motor whine (100-500 Hz with many harmonics) and the grinding of the bit (band noise), that
  spins up and down in 1-3 runs, some hammering at 20-50 Hz;
* `engine` (idling): a train of firing pulses at 15-60 Hz, each a little different, low-passed, with rumble;
* `air_conditioner`: steady low-passed noise, a fan's blade-pass tone and the motor's mains hum.

    python -m export.data.synth_machines --out DIR --count 480 --seconds 4 --seed 0
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from scipy import signal

from export.data import generator_cli
from export.data.audio import cache_root
from export.data.manifest import Clip

SAMPLE_RATE_HZ = 16000
# kind -> label; generate() cycles through the kinds in this order
KINDS = {"wail": "siren", "yelp": "siren", "hilo": "siren", "car_horn": "car_horn", "jackhammer": "jackhammer",
         "drilling": "drilling", "engine": "engine", "air_conditioner": "air_conditioner"}
RMS_DB = (-32.0, -14.0)  # written level of a clip
PEAK = 0.99


def harmonic_tone(phase: np.ndarray, rng: np.random.Generator, harmonics: int, tilt: float,
                  sample_rate_hz: int, f0_hz: np.ndarray | float) -> np.ndarray:
    """Sum of harmonics k = 1..harmonics of a running phase (radians), amplitude k**-tilt, each with a
    random phase offset; harmonics above Nyquist are left out sample by sample."""
    out = np.zeros_like(phase)
    f0 = np.broadcast_to(f0_hz, phase.shape)
    for k in range(1, harmonics + 1):
        below = (k * f0) < 0.45 * sample_rate_hz
        out += below * np.sin(k * phase + rng.uniform(0, 2 * np.pi)) * k ** -tilt
    return out


def unit(x: np.ndarray) -> np.ndarray:
    """x at unit standard deviation, so parts can be mixed at chosen ratios."""
    return x / (np.std(x) + 1e-9)


def phase_of(f_hz: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    return 2 * np.pi * np.cumsum(f_hz) / sample_rate_hz


def bandpass(x: np.ndarray, low_hz: float, high_hz: float, sample_rate_hz: int, order: int = 2) -> np.ndarray:
    sos = signal.butter(order, [low_hz, min(high_hz, 0.45 * sample_rate_hz)], btype="band", fs=sample_rate_hz,
                        output="sos")
    return signal.sosfilt(sos, x)


def lowpass(x: np.ndarray, cutoff_hz: float, sample_rate_hz: int, order: int = 2) -> np.ndarray:
    return signal.sosfilt(signal.butter(order, cutoff_hz, fs=sample_rate_hz, output="sos"), x)


def ramp(n: int, sample_rate_hz: int, seconds: float = 0.01) -> np.ndarray:
    """An on/off envelope of n samples with raised-cosine edges."""
    env = np.ones(n)
    k = min(n // 2, int(seconds * sample_rate_hz))
    if k:
        edge = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, k))
        env[:k], env[n - k:] = edge, edge[::-1]
    return env


def runs(n: int, sample_rate_hz: int, rng: np.random.Generator, on_s: tuple[float, float],
         off_s: tuple[float, float]) -> list[tuple[int, int]]:
    """(start, end) samples of on-periods alternating with pauses, from a random point of the cycle."""
    spans, t = [], int(rng.uniform(0, off_s[1]) * sample_rate_hz) if rng.random() < 0.5 else 0
    while t < n:
        end = min(n, t + int(rng.uniform(*on_s) * sample_rate_hz))
        spans.append((t, end))
        t = end + int(rng.uniform(*off_s) * sample_rate_hz)
    return spans


def siren(kind: str, n: int, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / sample_rate_hz
    low_hz, high_hz = rng.uniform(450, 800), rng.uniform(1100, 1800)
    if kind == "wail":
        period_s = rng.uniform(2.0, 6.0)
        sweep = 0.5 - 0.5 * np.cos(2 * np.pi * t / period_s + rng.uniform(0, 2 * np.pi))
    elif kind == "yelp":
        period_s = rng.uniform(0.15, 0.4)
        sweep = np.mod(t / period_s + rng.uniform(), 1.0) ** rng.uniform(0.6, 1.5)  # sawtooth rise
    else:  # hilo: two pitches, each held 0.3-0.8 s
        period_s = 2 * rng.uniform(0.3, 0.8)
        sweep = (np.mod(t / period_s + rng.uniform(), 1.0) < 0.5).astype(float)
        low_hz, high_hz = rng.uniform(450, 650), rng.uniform(700, 1000)
    f_hz = low_hz + (high_hz - low_hz) * sweep
    # passing by: Doppler (up to +-4 % at 30 m/s) and a level peak at the closest point
    passing = rng.random() < 0.5
    if passing:
        closest_s, spread_s = rng.uniform(0.2, 0.8) * n / sample_rate_hz, rng.uniform(0.5, 3.0)
        u = (t - closest_s) / spread_s
        f_hz = f_hz * (1 - rng.uniform(0.01, 0.04) * u / np.sqrt(1 + u ** 2))
    tone = harmonic_tone(phase_of(f_hz, sample_rate_hz), rng, harmonics=int(rng.integers(3, 9)),
                         tilt=rng.uniform(0.8, 2.0), sample_rate_hz=sample_rate_hz, f0_hz=f_hz)
    if passing:
        tone = tone / np.sqrt(1 + u ** 2)
    return tone


def car_horn(n: int, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    base_hz = rng.uniform(350, 520)
    pitches_hz = [base_hz, base_hz * rng.uniform(1.18, 1.34)] if rng.random() < 0.8 else [base_hz]
    t = np.arange(n) / sample_rate_hz
    # a diaphragm slapping its seat: a narrow pulse per cycle, rich in harmonics, through the horn's bell
    duty = rng.uniform(0.1, 0.3)
    tone = sum((np.mod(f * t + rng.uniform(), 1.0) < duty).astype(float) - duty for f in pitches_hz)
    bell_hz = rng.uniform(1200, 3000)
    tone = bandpass(tone, 300, 7000, sample_rate_hz) + 0.8 * bandpass(tone, bell_hz / 1.3, bell_hz * 1.3, sample_rate_hz)
    env = np.zeros(n)
    for start, end in runs(n, sample_rate_hz, rng, on_s=(0.2, 1.5), off_s=(0.1, 0.8))[:3]:
        env[start:end] = ramp(end - start, sample_rate_hz, 0.015)
    return np.tanh(rng.uniform(2, 8) * unit(tone)) * env


def jackhammer(n: int, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    rate_hz = rng.uniform(15, 28)
    resonances_hz = rng.uniform(500, 5000, size=int(rng.integers(3, 7)))
    decay_s = rng.uniform(0.01, 0.04)  # the steel bit rings
    k = int(5 * decay_s * sample_rate_hz)
    decay = np.exp(-np.arange(k) / (decay_s * sample_rate_hz))
    impulse = sum(rng.uniform(0.3, 1) * np.sin(2 * np.pi * f * np.arange(k) / sample_rate_hz + rng.uniform(0, 6))
                  for f in resonances_hz) * decay
    thump = np.sin(2 * np.pi * rng.uniform(60, 200) * np.arange(k) / sample_rate_hz) * decay
    hits = np.zeros(n + k)
    hiss_env = np.zeros(n)  # exhaust air, while it runs
    for start, end in runs(n, sample_rate_hz, rng, on_s=(1.5, 5.0), off_s=(0.1, 0.8)):
        hiss_env[start:end] = 1.0
        t = start
        while t < end:
            hits[t:t + k] += (impulse * rng.uniform(0.6, 1.0) + rng.normal(0, 0.5, k) * decay
                              + rng.uniform(0.2, 1.0) * thump)
            t += int(sample_rate_hz / (rate_hz * rng.uniform(0.95, 1.05)))
    hiss = bandpass(rng.normal(0, 1, n), rng.uniform(800, 2000), 7000, sample_rate_hz)
    hits = hits[:n] / (np.std(hits) + 1e-9)
    return hits + rng.uniform(0.2, 0.8) * unit(hiss) * hiss_env * (0.5 + np.abs(hits))


def drilling(n: int, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / sample_rate_hz
    on = np.zeros(n)
    for start, end in runs(n, sample_rate_hz, rng, on_s=(1.0, 4.0), off_s=(0.2, 1.2))[:3]:
        on[start:end] = ramp(end - start, sample_rate_hz, rng.uniform(0.05, 0.3))  # spin up and down
    # the bit grinding the material: noise ringing at a few resonances of 1-6 kHz (recordings centre at 2-5 kHz)
    noise = rng.normal(0, 1, n)
    grind = sum(rng.uniform(0.3, 1) * bandpass(noise, f / q, f * q, sample_rate_hz)
                for f, q in zip(rng.uniform(1000, 6000, 4), rng.uniform(1.05, 1.3, 4)))
    grind += rng.uniform(0.1, 0.5) * bandpass(noise, 500, 7500, sample_rate_hz)
    # modulated at the spindle's rotation (100-400 Hz) and, in a hammer drill, its blows (20-60 Hz)
    rot = 1 - rng.uniform(0.2, 0.8) * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(100, 400) * t))
    blows = 0.4 + np.sin(np.pi * rng.uniform(20, 60) * t) ** 6 if rng.random() < 0.5 else 1.0
    motor_hz = rng.uniform(600, 2000)
    whine = harmonic_tone(2 * np.pi * motor_hz * t, rng, harmonics=8, tilt=1.0, sample_rate_hz=sample_rate_hz,
                          f0_hz=motor_hz)
    return on * (unit(grind) * rot * blows + rng.uniform(0.05, 0.5) * unit(whine))


def engine(n: int, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    rate_hz = rng.uniform(15, 60)  # firings per second: cylinders x rpm / 120
    out = np.zeros(n)
    width = max(2, int(rng.uniform(0.002, 0.008) * sample_rate_hz))
    pulse = np.hanning(2 * width)
    t = int(rng.uniform(0, sample_rate_hz / rate_hz))
    while t < n - len(pulse):
        out[t:t + len(pulse)] += pulse * rng.uniform(0.6, 1.0)  # cycle-to-cycle variation
        t += int(sample_rate_hz / (rate_hz * rng.uniform(0.97, 1.03)))
    out = lowpass(out - out.mean(), rng.uniform(300, 1500), sample_rate_hz, order=4)
    rumble = lowpass(rng.normal(0, 1, n), rng.uniform(100, 400), sample_rate_hz)
    rattle = bandpass(rng.normal(0, 1, n), 1500, 5000, sample_rate_hz) * np.abs(out) if rng.random() < 0.5 else 0
    return unit(out) + rng.uniform(0.1, 0.6) * unit(rumble) + rattle


def air_conditioner(n: int, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / sample_rate_hz
    air = lowpass(rng.normal(0, 1, n), rng.uniform(300, 2500), sample_rate_hz, order=1)
    air = unit(air)
    blade_hz = rng.uniform(40, 300)
    blades = harmonic_tone(2 * np.pi * blade_hz * t, rng, harmonics=4, tilt=1.5, sample_rate_hz=sample_rate_hz,
                           f0_hz=blade_hz)
    mains_hz = rng.choice([50.0, 60.0])
    hum = sum(rng.uniform(0, 1) * np.sin(2 * np.pi * k * mains_hz * t + rng.uniform(0, 6)) for k in (2, 4, 6))
    swell = 1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t)  # the fan's slow beat
    return swell * (air + rng.uniform(0.1, 0.8) * blades + rng.uniform(0, 0.4) * hum)


# kind -> its sound (n_samples, sample_rate_hz, rng) -> audio
SOUNDS = {"wail": partial(siren, "wail"), "yelp": partial(siren, "yelp"), "hilo": partial(siren, "hilo"),
          "car_horn": car_horn, "jackhammer": jackhammer, "drilling": drilling, "engine": engine,
          "air_conditioner": air_conditioner}


def make_machine(kind: str, seconds: float, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """One clip of `kind` (a key of KINDS), float32, at a random level in RMS_DB."""
    if kind not in SOUNDS:
        raise ValueError(f"unknown machine kind {kind!r}; kinds: {', '.join(KINDS)}")
    audio = SOUNDS[kind](int(seconds * sample_rate_hz), sample_rate_hz, rng)
    rms = np.sqrt(np.mean(audio ** 2)) + 1e-12
    audio = audio * 10 ** (rng.uniform(*RMS_DB) / 20) / rms
    peak = np.max(np.abs(audio))
    if peak > PEAK:
        audio *= PEAK / peak
    return audio.astype(np.float32)


def default_out_dir(seed: int = 0) -> Path:
    return cache_root() / "synth_machines" / f"seed{seed}"


def generate(out_dir: str | Path, count: int, seconds: float = 4.0, seed: int = 0,
             sample_rate_hz: int = SAMPLE_RATE_HZ) -> list[Clip]:
    """count clips, the kinds in turn, plus out_dir/manifest.csv. A clip depends on (seed, its index) only."""
    kinds = list(KINDS)

    def make(i: int, rng: np.random.Generator) -> tuple[str, tuple[str, ...], np.ndarray]:
        kind = kinds[i % len(kinds)]
        label = KINDS[kind]
        return f"{label}/{kind}_{i:05d}.wav", (label, f"kind={kind}"), make_machine(kind, seconds, sample_rate_hz, rng)

    return generator_cli.write_clips(out_dir, count, seconds, seed, sample_rate_hz, make)


def main(argv: list[str] | None = None) -> None:
    clips, out, _ = generator_cli.run(__doc__, generate, default_out_dir, argv, count=480, seconds=4.0,
                                      count_help="clips, the kinds in turn (8 kinds)")
    print(f"{len(clips)} clips -> {out}/manifest.csv")


if __name__ == "__main__":
    main()
