"""Audio sources by spec: "mic", "file:PATH" (WAV/FLAC/anything libsndfile reads) and "stdin".

stdin carries raw PCM, signed 16-bit little-endian, interleaved; by default mono at the model rate.
"stdin:RATE_HZ" or "stdin:RATE_HZ:CHANNELS" says otherwise, e.g.
`sox in.wav -t raw -e signed -b 16 -r 44100 -c 2 - | streamd run --source stdin:44100:2`.

A file plays at real-time pace on its own thread, or with fast=True is pumped by the main thread
(as fast as inference goes, nothing lost). stdin is read on its own thread as it arrives (the writer
sets the pace), or pumped with fast=True. All go through the same mix-down and resampler as a
microphone, so the ring holds the same samples however they were delivered.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time

import numpy as np
import soundfile

from streamd.ringsource import RingSource, SourceError
from streamd.source import Source
from streamd.threadname import name_this_thread

log = logging.getLogger(__name__)

BLOCK_S = 0.040  # block read per step by the real-time file and stdin threads: a quarter of the smallest hop, 25 wakes/s
STDIN_SAMPLE_BYTES = 2  # s16le
STOP_WAIT_S = 1.0  # bounded join in stop()
__all__ = ["open_source", "FileSource", "StdinSource", "SourceError"]


def open_source(spec: str, name: str, sample_rate_hz: int, fast: bool = False,
                device: str | int | None = None, channels: list[int] | None = None,
                ring_seconds: float = 30.0, device_rate_hz: int | None = None, block_s: float | None = None) -> Source:
    """Open the source a spec names; raises SourceError with one clear line when it cannot.

    device_rate_hz and block_s apply to a microphone only (the rate to open the device at; None: the model
    rate if the device takes it, else its default; audio per callback, None: capture.BLOCK_S); files and
    stdin carry their own rate.
    """
    if spec == "mic":
        if fast:
            raise SourceError("a microphone cannot be read faster than real time (--fast is for files)")
        from streamd.capture import MicSource  # imports sounddevice, which needs PortAudio

        return MicSource(name, sample_rate_hz, device=device, channels=channels, ring_seconds=ring_seconds,
                         device_rate_hz=device_rate_hz, block_s=block_s)
    if spec.startswith("file:") and len(spec) > len("file:"):
        return FileSource(spec[len("file:"):], name, sample_rate_hz, fast=fast, channels=channels,
                          ring_seconds=ring_seconds)
    if spec == "stdin" or spec.startswith("stdin:"):
        in_rate_hz, in_channels = _parse_stdin_spec(spec, sample_rate_hz)
        return StdinSource(name, sample_rate_hz, in_rate_hz=in_rate_hz, in_channels=in_channels, fast=fast,
                           channels=channels, ring_seconds=ring_seconds)
    raise SourceError(f"unknown source {spec!r}: expected 'mic', 'file:PATH', 'stdin' or 'stdin:RATE_HZ[:CHANNELS]'")


def _parse_stdin_spec(spec: str, default_rate_hz: int) -> tuple[int, int]:
    parts = spec.split(":")[1:]
    try:
        rate_hz = int(parts[0]) if parts else default_rate_hz
        n_channels = int(parts[1]) if len(parts) > 1 else 1
    except ValueError:
        raise SourceError(f"bad stdin source {spec!r}: expected 'stdin:RATE_HZ[:CHANNELS]' with integers") from None
    if len(parts) > 2 or not 1000 <= rate_hz <= 384000 or not 1 <= n_channels <= 64:
        raise SourceError(f"bad stdin source {spec!r}: rate 1000..384000 Hz, 1..64 channels")
    return rate_hz, n_channels


def _check_channels(channels: list[int] | None, n_channels: int, what: str) -> None:
    if channels is not None and (not channels or any(not 0 <= c < n_channels for c in channels)):
        raise SourceError(f"{what} has {n_channels} channel(s); cannot select channels {channels}")


class _BlockSource(RingSource):
    """A source that reads (frames, channels) blocks on demand: pumped, or on its own thread."""

    paced = False  # True: the thread sleeps so that audio arrives at real-time pace

    def __init__(self, name, sample_rate_hz, in_rate_hz, fast, channels, ring_seconds):
        super().__init__(name, sample_rate_hz, ring_seconds, channels)
        self.realtime = not fast
        self.in_rate_hz = int(in_rate_hz)
        self._set_input_rate(self.in_rate_hz)
        self._carry = np.zeros(0, np.float32)  # resampled samples pump() could not hand out yet
        self._input_done = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read_frames(self, max_frames: int) -> np.ndarray:
        """Up to max_frames frames (frames, channels) float; an empty array at end of input."""
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def start(self) -> None:
        if self.realtime and self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"source-{self.name}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_S)
            if self._thread.is_alive():
                log.warning("%s: reader thread did not stop within %.1f s", self.name, STOP_WAIT_S)
        self._close()
        self.ring.wake()

    def pump(self, max_samples: int) -> int:
        if self.realtime:
            return super().pump(max_samples)
        while len(self._carry) < max_samples and not self._input_done:
            need_frames = max(1, -(-(max_samples - len(self._carry)) * self.in_rate_hz // self.sample_rate_hz))
            frames = self._read_frames(need_frames)
            if len(frames):
                out = self._to_model_rate(frames)
            else:  # end of input: the resampler's tail
                out = self._resampler_tail()
                self._input_done = True
            self._carry = np.concatenate([self._carry, out])
        out, self._carry = self._carry[:max_samples], self._carry[max_samples:]
        self.ring.write(out)
        if self._input_done and not len(self._carry):
            self._finish()
        return len(out)

    def _run(self) -> None:
        name_this_thread()
        block_frames = max(1, round(BLOCK_S * self.in_rate_hz))
        t0 = time.monotonic()
        read_frames = 0
        try:
            while not self._stop.is_set():
                frames = self._read_frames(block_frames)
                if not len(frames):
                    break
                read_frames += len(frames)
                if self.paced:  # the block's last sample "happens" at t0 + read_frames / rate
                    delay_s = t0 + read_frames / self.in_rate_hz - time.monotonic()
                    if delay_s > 0 and self._stop.wait(delay_s):
                        break
                self._deliver(frames)
        except Exception as err:  # never let the thread die silently
            log.exception("%s: reading failed", self.name)
            self._note("source_error", f"{self.name}: reading failed: {err}", error=str(err))
        if not self._stop.is_set():
            self._finish()


class FileSource(_BlockSource):
    paced = True

    def __init__(self, path: str, name: str, sample_rate_hz: int, fast: bool = False,
                 channels: list[int] | None = None, ring_seconds: float = 30.0):
        try:
            self._file = soundfile.SoundFile(path)
        except (OSError, RuntimeError, soundfile.LibsndfileError) as err:
            raise SourceError(f"cannot read audio file {path!r}: {err}") from None
        _check_channels(channels, self._file.channels, f"audio file {path!r}")
        self.path = path
        super().__init__(name, sample_rate_hz, self._file.samplerate, fast, channels, ring_seconds)
        self._note("source_opened", f"{name}: file {path} ({self._file.samplerate} Hz, {self._file.channels} ch, "
                   f"{self._file.frames / self._file.samplerate:.2f} s)", path=path,
                   input_rate_hz=self._file.samplerate, input_channels=self._file.channels)

    def _read_frames(self, max_frames: int) -> np.ndarray:
        return self._file.read(max_frames, dtype="float32", always_2d=True)

    def _close(self) -> None:
        self._file.close()

    def counters(self) -> dict:
        return dict(super().counters(), device=f"file:{self.path}")


class StdinSource(_BlockSource):
    """Raw s16le PCM from a file descriptor (standard input by default)."""

    def __init__(self, name: str, sample_rate_hz: int, in_rate_hz: int | None = None, in_channels: int = 1,
                 fast: bool = False, channels: list[int] | None = None, ring_seconds: float = 30.0,
                 fd: int | None = None):
        _check_channels(channels, in_channels, "stdin")
        self.fd = 0 if fd is None else fd  # standard input
        self.in_channels = in_channels
        self._frame_bytes = STDIN_SAMPLE_BYTES * in_channels
        self._partial = b""  # bytes of an incomplete frame
        self._eof = False
        super().__init__(name, sample_rate_hz, in_rate_hz or sample_rate_hz, fast, channels, ring_seconds)

    def _read_frames(self, max_frames: int) -> np.ndarray:
        """Frames as they arrive: waits (in slices, so stop() is noticed) until at least one frame is in."""
        while not self._eof and not self._stop.is_set():
            if len(self._partial) >= self._frame_bytes:
                break
            if self.realtime and not select.select([self.fd], [], [], 0.1)[0]:
                continue
            chunk = os.read(self.fd, max(max_frames * self._frame_bytes - len(self._partial), 1))
            if not chunk:
                self._eof = True
            self._partial += chunk
        n_frames = min(len(self._partial) // self._frame_bytes, max_frames)
        data, self._partial = self._partial[: n_frames * self._frame_bytes], self._partial[n_frames * self._frame_bytes :]
        pcm = np.frombuffer(data, "<i2").reshape(n_frames, self.in_channels)
        return pcm.astype(np.float32) / 32768.0

    def counters(self) -> dict:
        return dict(super().counters(), device="stdin")
