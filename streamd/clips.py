"""Detection clips: the audio around a keyword event (or a whole tag event) as WAV, with the event's JSON as a sidecar.

A keyword's clip is requested when the event is published; a tag's is opened at its start and closed at its end,
which is published ``hold_s`` late, so that it may be longer than the stream's ring holds. Each pending clip copies
its audio out of the ring as it arrives (from the pre-roll before the keyword's position or the tag's start; at most
its last MAX_CLIP_S) and is written once the post-roll has arrived (or the stream ends). The folder is kept within
``max_count`` clips and ``max_bytes`` bytes, oldest removed first.

Both files are written under hidden ``.part`` names and renamed into place, sidecar first: a reader
of the folder never sees half a clip, and a failed write (a full disk, a folder gone) is logged and
counted, leaves nothing behind and never stops the service.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

from streamd.source import Ring

log = logging.getLogger(__name__)

MAX_PENDING = 32  # clips waiting for their post-roll (or a tag for its end); more are refused, not queued
MAX_CLIP_S = 40.0  # a clip keeps at most its last this long: a tag's 30 s events (max_event_s) whole, with rolls
PART_SUFFIX = ".part"  # a file being written: hidden (".stem.wav.part") until it is complete


@dataclass
class _Pending:
    ring: Ring
    next_index: int  # the next sample to copy out of the ring
    end_index: int | None  # None: open (a tag still on; its end not yet known)
    stem: str
    sidecar: bytes
    key: tuple = ()  # an open clip's event: (stream, model, tag)
    chunks: list[np.ndarray] = field(default_factory=list)
    n_samples: int = 0
    lost_samples: int = 0  # left the ring before they were copied


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
        start = position_samples if start_samples is None else start_samples
        self._add(_Pending(ring, start - self.pre_roll_samples, position_samples + self.post_roll_samples, stem,
                           sidecar))

    def open(self, key: tuple, ring: Ring, start_samples: int) -> None:
        """Begin the clip of an event whose end is not known yet (a tag at its start): its audio from pre-roll
        before start_samples is copied as it arrives, until close(key, ...)."""
        self._add(_Pending(ring, start_samples - self.pre_roll_samples, None, f"{key}", b"", key))

    def is_open(self, key: tuple) -> bool:
        """Is the clip of key open (its event started and has not ended)?"""
        return self._open(key) is not None

    def close(self, key: tuple, ring: Ring, position_samples: int, stem: str, sidecar: bytes,
              start_samples: int) -> None:
        """End the open clip of key post-roll after position_samples; without one (it was refused, or the event
        began before the saver did), a clip from what the ring still holds."""
        item = self._open(key)
        if item is None:
            self.request(ring, position_samples, stem, sidecar, start_samples)
            return
        item.end_index, item.stem, item.sidecar = position_samples + self.post_roll_samples, stem, sidecar
        beyond = item.next_index - item.end_index
        if beyond > 0:  # copied past its end already (a fast source runs ahead of the events)
            kept = np.concatenate([np.zeros(0, np.float32), *item.chunks])[:max(0, item.n_samples - beyond)]
            item.chunks, item.n_samples, item.next_index = [kept], len(kept), item.end_index

    def _open(self, key: tuple) -> _Pending | None:
        return next((p for p in self._pending if p.key == key and p.end_index is None), None)

    def _add(self, item: _Pending) -> None:
        if len(self._pending) >= MAX_PENDING:
            self.refused += 1
            log.warning("clip %s refused: %d clips already wait for their post-roll", item.stem, MAX_PENDING)
            return
        item.next_index = max(0, item.next_index)
        self._pending.append(item)
        self._copy(item)

    def service(self, finishing: bool = False) -> int:
        """Copy what arrived into each pending clip; write every clip whose post-roll has arrived (all of them
        when finishing); return how many were written."""
        written = 0
        for item in list(self._pending):
            self._copy(item)
            if finishing or (item.end_index is not None and item.next_index >= item.end_index):
                self._pending.remove(item)
                if item.end_index is None:  # a tag whose end never came: nothing to name the clip by
                    log.warning("clip of %s dropped: the event had not ended when the stream did", item.key)
                    continue
                written += self._write(item)
        return written

    def _copy(self, item: _Pending) -> None:
        """The samples of item that have arrived since the last copy, as far as its end; the oldest dropped beyond
        MAX_CLIP_S."""
        ring = item.ring
        for _ in range(3):  # a source thread may overwrite the oldest sample between the bounds and the read
            start = max(item.next_index, ring.oldest_index)
            end = ring.end_index if item.end_index is None else min(ring.end_index, item.end_index)
            item.lost_samples += max(0, min(start, end) - item.next_index)
            item.next_index = max(item.next_index, min(start, end))
            if end <= start:
                return
            try:
                chunk = ring.read(start, end - start)
                break
            except IndexError:
                continue
        else:
            return
        item.chunks.append(chunk)
        item.n_samples += len(chunk)
        item.next_index = end
        limit = round(MAX_CLIP_S * self.sample_rate_hz)
        while item.n_samples - len(item.chunks[0]) >= limit:
            item.n_samples -= len(item.chunks.pop(0))
        if item.n_samples > limit:
            item.chunks[0] = item.chunks[0][item.n_samples - limit:]
            item.n_samples = limit

    def _write(self, item: _Pending) -> int:
        if not item.n_samples:
            log.warning("clip %s: its audio is no longer in the ring", item.stem)
            return 0
        if item.lost_samples:
            log.warning("clip %s: %.2f s of it had left the ring before it was copied", item.stem,
                        item.lost_samples / self.sample_rate_hz)
        wav = self._free_name(item.stem)
        sidecar = wav.with_suffix(".json")
        parts = [_part(wav), _part(sidecar)]
        try:
            # libsndfile reports a failed write (ENOSPC, EFBIG) as SoundFileError, not OSError
            soundfile.write(parts[0], np.concatenate(item.chunks), self.sample_rate_hz, format="WAV", subtype="PCM_16")
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
