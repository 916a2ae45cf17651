"""Detection clips: the audio around a keyword event (or a whole tag event) as WAV, with the event's JSON as a sidecar.

A clip is requested when the event is published and written once the post-roll has arrived (or the
stream ends). The pre-roll comes from the stream's ring: before a keyword's position, before a tag's start. The
folder is kept within ``max_count`` clips and ``max_bytes`` bytes, oldest removed first.

Both files are written under hidden ``.part`` names and renamed into place, sidecar first: a reader
of the folder never sees half a clip, and a failed write (a full disk, a folder gone) is logged and
counted, leaves nothing behind and never stops the service.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import soundfile

from streamd.source import Ring

log = logging.getLogger(__name__)

MAX_PENDING = 32  # clips waiting for their post-roll; more are refused, not queued
PART_SUFFIX = ".part"  # a file being written: hidden (".stem.wav.part") until it is complete


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
        self.refused = 0  # too many clips waiting
        self.failed = 0  # could not be written
        self._pending: list[_Pending] = []
        for stale in self.directory.glob(f".*{PART_SUFFIX}"):  # left by a process killed mid-write
            stale.unlink(missing_ok=True)

    def request(self, ring: Ring, position_samples: int, stem: str, sidecar: bytes,
                start_samples: int | None = None) -> None:
        """Ask for a clip from pre-roll before start_samples (default: the position) to post-roll after
        position_samples; the sidecar is the event's JSON as published."""
        if len(self._pending) >= MAX_PENDING:
            self.refused += 1
            log.warning("clip %s refused: %d clips already wait for their post-roll", stem, MAX_PENDING)
            return
        start = max(0, (position_samples if start_samples is None else start_samples) - self.pre_roll_samples)
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
        wav = self._free_name(item.stem)
        sidecar = wav.with_suffix(".json")
        parts = [_part(wav), _part(sidecar)]
        try:
            # libsndfile reports a failed write (ENOSPC, EFBIG) as SoundFileError, not OSError
            soundfile.write(parts[0], ring.read(start, end - start), self.sample_rate_hz, format="WAV", subtype="PCM_16")
            parts[1].write_bytes(item.sidecar + b"\n")
            parts[1].rename(sidecar)
            parts[0].rename(wav)
        except (OSError, soundfile.SoundFileError) as err:
            self.failed += 1
            log.warning("clip %s not saved: %s", wav, err)
            for path in parts + ([sidecar] if not wav.exists() else []):
                _remove(path)
            return 0
        self.saved += 1
        self._enforce_limits()
        return 1

    def _free_name(self, stem: str) -> Path:
        """stem.wav, or stem-2.wav, -3, ... where a clip has that name already: seq restarts with each process, so
        a run started within the same second as the last one's clip would otherwise write over it."""
        wav, n = self.directory / f"{stem}.wav", 1
        while wav.exists() or wav.with_suffix(".json").exists():
            n += 1
            wav = self.directory / f"{stem}-{n}.wav"
        return wav

    def _enforce_limits(self) -> None:
        clips = []
        for wav in self.directory.glob("*.wav"):
            try:
                stat = wav.stat()
            except OSError:  # removed by someone else meanwhile
                continue
            clips.append((stat.st_mtime_ns, wav.name, wav, stat.st_size + _size(wav.with_suffix(".json"))))
        clips.sort()
        total = sum(c[3] for c in clips)
        while clips and (len(clips) > self.max_count or total > self.max_bytes):
            *_, oldest, size = clips.pop(0)
            total -= size
            _remove(oldest)
            _remove(oldest.with_suffix(".json"))


def clips_dir(config) -> Path:
    """The folder a config keeps its clips in: clips.dir (relative to the config's folder), else systemd's
    $STATE_DIRECTORY/clips, else ~/.local/state/streamd/clips."""
    if config.clips.dir:
        return config.resolve(config.clips.dir)
    state = os.environ.get("STATE_DIRECTORY")
    return Path(state.split(":")[0]) / "clips" if state else Path.home() / ".local/state/streamd/clips"


def folder_problem(folder: Path) -> str | None:
    """Why clips could not be kept in folder, or None; creates nothing (for `streamd check`)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{str(existing)!r} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{str(existing)!r} is not writable by this user"
    return None


def _part(path: Path) -> Path:
    return path.with_name(f".{path.name}{PART_SUFFIX}")


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as err:
        log.warning("could not remove %s: %s", path, err)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
