"""Decode audio once: files are read, mixed to mono, resampled and cached as .npy beside nothing in
the repo (default cache: ~/.cache/streamd/audio, or $STREAMD_CACHE)."""

from __future__ import annotations

import hashlib
import os
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly


def cache_root() -> Path:
    """Where generated and decoded data live, outside the repo: $STREAMD_CACHE or ~/.cache/streamd."""
    return Path(os.environ.get("STREAMD_CACHE", Path.home() / ".cache" / "streamd"))


def cache_dir() -> Path:
    return cache_root() / "audio"


def decode(path: str | Path, sample_rate_hz: int) -> np.ndarray:
    """float32 mono in [-1, 1] at sample_rate_hz."""
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != sample_rate_hz:
        g = gcd(rate, sample_rate_hz)
        audio = resample_poly(audio, sample_rate_hz // g, rate // g).astype(np.float32)
    return audio


def load_audio(path: str | Path, sample_rate_hz: int = 16000) -> np.ndarray:
    """decode() with an on-disk cache keyed by path, size, mtime and rate."""
    path = Path(path)
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{sample_rate_hz}".encode()).hexdigest()
    cached = cache_dir() / key[:2] / f"{key}.npy"
    if cached.exists():
        return np.load(cached)
    audio = decode(path, sample_rate_hz)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, audio)
    tmp.replace(cached)
    return audio
