"""Decode audio once: files are read, mixed to mono, resampled and cached as .npy beside nothing in
the repo (default cache: ~/.cache/streamd/audio, or $STREAMD_CACHE)."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
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


def file_digest(path: str | Path) -> str:
    """sha1 of the file's bytes: a cache key that holds across copies, moves and fresh checkouts of the
    same data (a path and mtime do not: ../shared is laid down anew for each session)."""
    path = Path(path).resolve()
    stat = path.stat()
    return _digest(path, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=1 << 16)
def _digest(path: Path, size: int, mtime_ns: int) -> str:  # size and mtime: a file rewritten is read again
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_audio(path: str | Path, sample_rate_hz: int = 16000) -> np.ndarray:
    """decode() with an on-disk cache keyed by the file's content and the rate."""
    key = hashlib.sha1(f"{file_digest(path)}|{sample_rate_hz}".encode()).hexdigest()
    cached = cache_dir() / key[:2] / f"{key}.npy"
    if cached.exists():
        return np.load(cached)
    audio = decode(path, sample_rate_hz)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, audio)
    tmp.replace(cached)
    return audio
