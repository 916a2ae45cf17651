"""Waveform augmentation in numpy, every random choice drawn from an explicit np.random.Generator.

Background noise and speech at a random SNR, reverberation from simulated rooms, gain with a peak
limit, time shift, and mixup for tags. Features-side SpecAugment (torch) is in specaug.py.
All functions take and return float32 mono arrays and never change the length of their input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

from export.data.audio import load_audio
from export.data.manifest import read_manifest
from export.data.splits import is_time_split, split_of, time_split

log = logging.getLogger(__name__)

EPS = 1e-12


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)) + EPS))


def random_excerpt(source: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of source from a random offset; short sources are looped."""
    if len(source) < n:
        source = np.tile(source, n // len(source) + 1)
    start = int(rng.integers(len(source) - n + 1))
    return source[start:start + n]


def mix_at_snr(signal: np.ndarray, background: np.ndarray, snr_db: float, rng: np.random.Generator,
               ) -> np.ndarray:
    """signal + an excerpt of background scaled so that 10 log10(P_signal / P_background) = snr_db,
    powers taken over the whole clip. A silent signal gets the background at its own level."""
    noise = random_excerpt(background, len(signal), rng).astype(np.float64)
    signal_rms = rms(signal) if np.any(signal) else rms(noise)
    scale = signal_rms / (rms(noise) * 10 ** (snr_db / 20))
    return (signal + scale * noise).astype(np.float32)


def room_impulse_response(rt60_s: float, sample_rate_hz: int, rng: np.random.Generator,
                          drr_db: tuple[float, float] = (0.0, 10.0)) -> np.ndarray:
    """A simulated room: a direct path at sample 0, 3-10 early reflections within 3-50 ms, and a
    diffuse exponentially decaying noise tail (-60 dB at rt60_s) from the first reflection on, the direct
    and early sound drr_db (drawn) above the tail: 0..10 dB is a talker near the microphone, below 0 one across
    the room."""
    n = max(2, int(min(1.2 * rt60_s, 1.0) * sample_rate_hz))
    t_s = np.arange(n) / sample_rate_hz
    decay = np.exp(-6.908 * t_s / rt60_s)  # ln(1000): amplitude -60 dB at rt60
    rir = np.zeros(n)
    rir[0] = 1.0
    first = int(rng.uniform(0.003, 0.012) * sample_rate_hz)
    for delay_s in rng.uniform(0.003, 0.05, size=int(rng.integers(3, 11))):
        k = min(n - 1, int(delay_s * sample_rate_hz))
        first = min(first, k)
        rir[k] += rng.choice([-1, 1]) * rng.uniform(0.2, 0.7) * decay[k]
    tail = rng.standard_normal(n) * decay
    tail[:first] = 0.0
    # direct-to-reverberant energy ratio, whatever the room size
    ratio_db = rng.uniform(*drr_db)
    rir[1:] += tail[1:] * np.sqrt(np.sum(rir ** 2) / (np.sum(tail ** 2) + EPS) / 10 ** (ratio_db / 10))
    return rir.astype(np.float32)


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Causal convolution, cut to the input's length, RMS kept equal to the dry signal's."""
    wet = fftconvolve(audio.astype(np.float64), rir.astype(np.float64))[: len(audio)]
    if np.any(audio):
        wet *= rms(audio) / rms(wet)
    return wet.astype(np.float32)


def random_reverb(audio: np.ndarray, sample_rate_hz: int, rng: np.random.Generator,
                  rt60_range_s: tuple[float, float] = (0.1, 0.8),
                  drr_db: tuple[float, float] = (0.0, 10.0)) -> np.ndarray:
    return reverberate(audio, room_impulse_response(rng.uniform(*rt60_range_s), sample_rate_hz, rng, drr_db))


def eq_curve_db(freqs_hz: np.ndarray, rng: np.random.Generator, max_db: float = 6.0,
                n_points: tuple[int, int] = (3, 6), band_hz: tuple[float, float] = (60.0, 7000.0)) -> np.ndarray:
    """A random smooth frequency response (dB at each of freqs_hz): 3-6 points at random log-spaced
    frequencies in band_hz, each with a gain uniform in +-max_db, joined linearly over log frequency and
    held flat beyond the outer ones (as FilterAugment draws a microphone's or a room's colouring)."""
    k = int(rng.integers(n_points[0], n_points[1] + 1))
    at_hz = np.sort(np.exp(rng.uniform(np.log(band_hz[0]), np.log(band_hz[1]), k)))
    gains_db = rng.uniform(-max_db, max_db, k)
    return np.interp(np.log(np.maximum(freqs_hz, 1.0)), np.log(at_hz), gains_db)


def random_eq(audio: np.ndarray, sample_rate_hz: int, rng: np.random.Generator, max_db: float = 6.0) -> np.ndarray:
    """The audio through a random smooth zero-phase equaliser (eq_curve_db); same length. The curve is
    smooth, so its impulse response is short and the padding keeps the filtering linear, not circular."""
    n_fft = 1 << int(np.ceil(np.log2(len(audio) + 2048)))
    gain = 10 ** (eq_curve_db(np.fft.rfftfreq(n_fft, 1 / sample_rate_hz), rng, max_db) / 20)
    return np.fft.irfft(np.fft.rfft(audio.astype(np.float64), n_fft) * gain, n_fft)[: len(audio)].astype(np.float32)


def mains_hum(n: int, sample_rate_hz: int, rng: np.random.Generator, rms_db: float,
              mains_hz: float | None = None) -> np.ndarray:
    """n samples of mains hum as a cheap microphone or a ground loop picks it up, rms_db dBFS RMS: 50 or
    60 Hz (mains_hz, else drawn) within 0.5 %, and harmonics up to the 9th at random levels falling with
    their order (rectifier buzz is rich in them), each at a random phase."""
    f0_hz = (mains_hz or float(rng.choice([50.0, 60.0]))) * rng.uniform(0.995, 1.005)
    t = np.arange(n) / sample_rate_hz
    hum = np.zeros(n)
    for k in range(1, 10):
        if k * f0_hz < sample_rate_hz / 2:
            hum += rng.uniform(0.0, 1.0) * k ** -rng.uniform(0.5, 1.5) * np.sin(2 * np.pi * k * f0_hz * t + rng.uniform(0, 2 * np.pi))
    return hum * 10 ** (rms_db / 20) / max(rms(hum), 1e-12)


def apply_gain(audio: np.ndarray, gain_db: float, peak_limit: float = 0.99) -> np.ndarray:
    """Scale by gain_db, then scale down (never clip) so the peak is at most peak_limit."""
    out = audio.astype(np.float64) * 10 ** (gain_db / 20)
    peak = float(np.abs(out).max(initial=0.0))
    if peak > peak_limit:
        out *= peak_limit / peak
    return out.astype(np.float32)


def random_gain(audio: np.ndarray, rng: np.random.Generator, gain_range_db: tuple[float, float] = (-20.0, 6.0),
                peak_limit: float = 0.99) -> np.ndarray:
    return apply_gain(audio, rng.uniform(*gain_range_db), peak_limit)


def time_shift(audio: np.ndarray, shift_samples: int) -> np.ndarray:
    """Delay (positive) or advance (negative) with zeros filled in; no wrap-around."""
    n = len(audio)
    shift = max(-n, min(n, shift_samples))
    out = np.zeros_like(audio)
    if shift >= 0:
        out[shift:] = audio[: n - shift]
    else:
        out[: n + shift] = audio[-shift:]
    return out


def random_time_shift(audio: np.ndarray, rng: np.random.Generator, max_shift_samples: int) -> np.ndarray:
    return time_shift(audio, int(rng.integers(-max_shift_samples, max_shift_samples + 1)))


def mixup(a: np.ndarray, labels_a, b: np.ndarray, labels_b, rng: np.random.Generator, alpha: float = 0.4,
          ) -> tuple[np.ndarray, dict[str, float]]:
    """lam * a + (1 - lam) * b (b cut or looped to len(a)), lam ~ Beta(alpha, alpha).

    Returns the mix and {label: weight} over the union of both label sets, weight = the share of
    the clip(s) carrying it (a label on both sides gets 1). For multi-label tagging use the keys as
    positives (both sounds are audible) or the weights as soft targets."""
    lam = float(rng.beta(alpha, alpha))
    mixed = lam * a.astype(np.float64) + (1 - lam) * random_excerpt(b, len(a), rng)
    weights: dict[str, float] = {}
    for labels, w in ((labels_a, lam), (labels_b, 1 - lam)):
        for label in labels:
            weights[label] = min(1.0, weights.get(label, 0.0) + w)
    return mixed.astype(np.float32), weights


# --- backgrounds from ../shared/data ---------------------------------------------------------------

@dataclass
class Backgrounds:
    """Real noise and speech to mix under training clips, from one side of the validation split."""
    noise: list[np.ndarray]
    speech: list[np.ndarray]

    @classmethod
    def from_shared_data(cls, root: str | Path, split: str, sample_rate_hz: int = 16000) -> "Backgrounds":
        """noise/ cut in time (splits.time_split), speech/ by file (splits.split_of)."""
        noise, speech = [], []
        for clip in read_manifest(Path(root) / "manifest.csv"):
            if is_time_split(clip):
                noise.append(time_split(load_audio(clip.path, sample_rate_hz), split))
            elif clip.label == "speech" and split_of(clip) == split:
                speech.append(load_audio(clip.path, sample_rate_hz))
        log.info("%s backgrounds: %d noise, %d speech files", split, len(noise), len(speech))
        return cls(noise, speech)


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of `augment`; each step is applied independently."""
    p_noise: float = 0.8
    noise_snr_db: tuple[float, float] = (0.0, 30.0)
    p_speech: float = 0.3
    speech_snr_db: tuple[float, float] = (5.0, 25.0)  # background talk stays below the target
    p_reverb: float = 0.5
    rt60_s: tuple[float, float] = (0.1, 0.8)
    gain_db: tuple[float, float] = (-20.0, 6.0)
    peak_limit: float = 0.99
    max_shift_s: float = 0.0


def augment(audio: np.ndarray, rng: np.random.Generator, backgrounds: Backgrounds,
            cfg: AugmentConfig = AugmentConfig(), sample_rate_hz: int = 16000) -> np.ndarray:
    """Shift, reverb, then background speech and noise at random SNRs, then gain: room first, so the
    backgrounds are not reverberated twice (they are real recordings with their own room)."""
    out = audio.astype(np.float32)
    if cfg.max_shift_s > 0:
        out = random_time_shift(out, rng, int(cfg.max_shift_s * sample_rate_hz))
    if rng.random() < cfg.p_reverb:
        out = random_reverb(out, sample_rate_hz, rng, cfg.rt60_s)
    if backgrounds.speech and rng.random() < cfg.p_speech:
        other = backgrounds.speech[int(rng.integers(len(backgrounds.speech)))]
        out = mix_at_snr(out, other, rng.uniform(*cfg.speech_snr_db), rng)
    if backgrounds.noise and rng.random() < cfg.p_noise:
        noise = backgrounds.noise[int(rng.integers(len(backgrounds.noise)))]
        out = mix_at_snr(out, noise, rng.uniform(*cfg.noise_snr_db), rng)
    return random_gain(out, rng, cfg.gain_db, cfg.peak_limit)
