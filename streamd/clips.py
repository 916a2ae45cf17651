"""Detection clips: the audio around a keyword event as WAV, with the event's JSON as a sidecar.

A clip is requested when the event is published and written once the post-roll has arrived (or the
stream ends). The pre-roll comes from the stream's ring. The folder is kept within ``max_count``
clips and ``max_bytes`` bytes, oldest removed first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import soundfile

from streamd.source import Ring

log = logging.getLogger(__name__)

MAX_PENDING = 32  # clips waiting for their post-roll; more are refused, not queued


@dataclass
class _Pending:
    ring: Ring
    start_index: int
    end_index: int
    stem: str
    sidecar: bytes


class ClipSaver:
    def __init__(self, directory: str | Path, sample_rate_hz: int, pre_roll_s: float, post_roll_s: float,
                 max_count: int, max_bytes: int):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sample_rate_hz = sample_rate_hz
        self.pre_roll_samples = round(pre_roll_s * sample_rate_hz)
        self.post_roll_samples = round(post_roll_s * sample_rate_hz)
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.saved = 0
        self.refused = 0
        self._pending: list[_Pending] = []

    def request(self, ring: Ring, position_samples: int, stem: str, sidecar: bytes) -> None:
        """Ask for a clip around position_samples; the sidecar is the event's JSON as published."""
        if len(self._pending) >= MAX_PENDING:
            self.refused += 1
            log.warning("clip %s refused: %d clips already wait for their post-roll", stem, MAX_PENDING)
            return
        start = max(0, position_samples - self.pre_roll_samples)
        self._pending.append(_Pending(ring, start, position_samples + self.post_roll_samples, stem, sidecar))

    def service(self, finishing: bool = False) -> int:
        """Write every clip whose post-roll has arrived (all of them when finishing); return how many."""
        written = 0
        for item in list(self._pending):
            if finishing or item.ring.end_index >= item.end_index:
                self._pending.remove(item)
                written += self._write(item)
        return written

    def _write(self, item: _Pending) -> int:
        ring = item.ring
        start = max(item.start_index, ring.oldest_index)
        end = min(item.end_index, ring.end_index)
        if end <= start:
            log.warning("clip %s: its audio is no longer in the ring", item.stem)
            return 0
        wav = self.directory / f"{item.stem}.wav"
        try:
            soundfile.write(wav, ring.read(start, end - start), self.sample_rate_hz, subtype="PCM_16")
            wav.with_suffix(".json").write_bytes(item.sidecar + b"\n")
        except OSError as err:
            log.warning("clip %s not saved: %s", wav, err)
            return 0
        self.saved += 1
        self._enforce_limits()
        return 1

    def _enforce_limits(self) -> None:
        clips = sorted(self.directory.glob("*.wav"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        sizes = {p: p.stat().st_size + _size(p.with_suffix(".json")) for p in clips}
        total = sum(sizes.values())
        while clips and (len(clips) > self.max_count or total > self.max_bytes):
            oldest = clips.pop(0)
            total -= sizes[oldest]
            oldest.unlink(missing_ok=True)
            oldest.with_suffix(".json").unlink(missing_ok=True)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
