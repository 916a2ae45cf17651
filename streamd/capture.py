"""Microphone capture: a PortAudio input stream per microphone, kept open through device faults.

The PortAudio callback only queues a copy of its block; it never raises and never logs. The thread that
reads the ring next (the main loop, once per hop) mixes down, sanitises and resamples what is queued, in one
call (streamd.lazyring). A supervisor thread per microphone opens the stream, watches it (stream errors and
finished callbacks, a callback that stops arriving, overflow flags) and reopens a vanished device
with exponential backoff, while the main thread carries on. Everything the main thread should
publish goes out as StatusNotes: device_opened, device_lost, device_reopened, overflow, overflow_end.

PortAudio enumerates devices once, at initialisation. A device that appears later (a USB microphone
plugged in, a sound server that restarts with new devices) is only seen after re-initialising
PortAudio, which also stops every open stream; so this is done only when no other microphone of this
process has a stream open (see docs/audio.md).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
import sounddevice as sd

from streamd.config import InputConfig
from streamd.lazyring import LazyRing
from streamd.ringsource import RingSource
from streamd.threadname import name_this_thread

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.1  # first retry after a failed open; doubles per failure
BACKOFF_MAX_S = 5.0  # cap on the retry interval
STALL_TIMEOUT_S = 5.0  # a started stream that delivers nothing this long counts as lost (an idle
#                        PulseAudio source takes ~2 s for its first callback)
OVERFLOW_EPISODE_GAP_S = 2.0  # an overflow episode ends after this long without overflow flags
WATCH_INTERVAL_S = 0.05  # how often the supervisor looks at the stream
REINIT_AFTER_FAILURES = 3  # failed opens before re-enumerating devices (if no other stream is open)
CLOSE_TIMEOUT_S = 2.0  # bounded wait for PortAudio to abort and close a stream
LATENCY = "low"  # PortAudio's suggested input latency
# Audio per callback (s): the config's default inputs[].block_ms. Left to the host, "low" latency through
# PulseAudio's ALSA plugin called us ~600 times a second with ~27 frames each, and the whole service took 11 % of a
# core; 10 ms blocks halve that and delay events little (`streamd bench --only mic,latency`; docs/bench.md
# "Capture blocks").
BLOCK_S = InputConfig.block_ms / 1000.0
MAX_QUEUED_S = 1.0  # audio the callback queues before it converts itself (the main loop looks every <= 0.25 s)

_open_streams_lock = threading.Lock()
_open_streams = 0  # streams open in this process: PortAudio may be re-initialised only at 0
_abandoned_streams: list = []  # streams PortAudio could not close (see MicSource._close_stream)


@dataclass(frozen=True)
class NewStream:
    """Queued before a stream's first block: what follows starts a new resampling stream at rate_hz."""

    rate_hz: int


class MicSource(RingSource):
    realtime = True

    def __init__(self, name: str, sample_rate_hz: int, device: str | int | None = None,
                 channels: list[int] | None = None, ring_seconds: float = 30.0,
                 stall_timeout_s: float = STALL_TIMEOUT_S, backoff_max_s: float = BACKOFF_MAX_S,
                 device_rate_hz: int | None = None, block_s: float | None = None):
        """device_rate_hz: open the device at this rate (resampled to sample_rate_hz); None: the model
        rate if the device takes it, else the device's default rate. block_s: audio per callback; None: BLOCK_S."""
        self.block_s = BLOCK_S if block_s is None else block_s  # (before the ring, which is sized by it)
        super().__init__(name, sample_rate_hz, ring_seconds, channels)
        self.device = device
        self.device_rate_hz = int(device_rate_hz) if device_rate_hz is not None else None
        self.stall_timeout_s = stall_timeout_s
        self.backoff_max_s = backoff_max_s
        self._stream: sd.InputStream | None = None
        self._stream_failed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._device_name: str | None = None
        self._device_rate_hz: int | None = None
        # written by the callback thread (callback_errors: by the converting one), read by the supervisor (ints:
        # safe under the GIL)
        self._last_callback_s = 0.0
        self._overflows = 0
        self._dropped_samples = 0
        self._callback_errors = 0
        self._next_adc_time_s: float | None = None
        self._callback_thread_named = False  # per stream: PortAudio starts a thread for each
        self._reopens = 0
        self.connected = False

    # -- Source protocol --
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._supervise, name=f"capture-{self.name}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2 * WATCH_INTERVAL_S + 1.0)
        self._close_stream()
        self.ring.wake()

    def counters(self) -> dict:
        self.ring.collect()  # the sanitising counters count converted blocks
        return {
            "overflows": self._overflows,
            "dropped_samples": self._dropped_samples,
            "reopens": self._reopens,
            "device": self._device_name,
            "device_rate_hz": self._device_rate_hz,
            "connected": self.connected,
            "callback_errors": self._callback_errors,
            **self._sanitise_counters(),
        }

    def _make_ring(self, capacity_samples: int) -> LazyRing:
        return LazyRing(capacity_samples, self._convert_queued, max_pending=round(MAX_QUEUED_S / self.block_s))

    def _convert_queued(self, items: list) -> None:
        """Queued blocks -> ring, one conversion per run of blocks from one stream (on the reading thread)."""
        run: list[np.ndarray] = []
        for item in [*items, None]:
            if isinstance(item, np.ndarray):
                run.append(item)
                continue
            if run:
                try:
                    self._deliver(run[0] if len(run) == 1 else np.concatenate(run))
                except Exception:  # counted, as the callback counts its own, and never raised into the reader
                    self._callback_errors += 1
                run = []
            if isinstance(item, NewStream):
                self._set_input_rate(item.rate_hz)

    # -- the PortAudio callback: queue a copy, never raise --
    def _callback(self, indata, frames, time_info, status) -> None:
        try:
            self._last_callback_s = time.monotonic()
            if not self._callback_thread_named:
                name_this_thread(f"audio-{self.name}")
                self._callback_thread_named = True
            adc_s = time_info.inputBufferAdcTime
            if status.input_overflow:
                self._overflows += 1
                if self._next_adc_time_s is not None and adc_s > self._next_adc_time_s:
                    # the host API's timestamps show the gap; without them the count stays 0
                    self._dropped_samples += round((adc_s - self._next_adc_time_s) * self._device_rate_hz)
            self._next_adc_time_s = adc_s + frames / self._device_rate_hz if adc_s > 0 else None
            self.ring.put(indata.copy())  # indata is PortAudio's buffer, reused after we return
        except Exception:
            self._callback_errors += 1

    def _finished_callback(self) -> None:
        self._stream_failed.set()

    # -- supervisor thread --
    def _supervise(self) -> None:
        name_this_thread()
        backoff_s = BACKOFF_FIRST_S
        failures = 0
        lost_at_s: float | None = None
        first = True
        while not self._stop.is_set():
            try:
                self._open_stream()
            except Exception as err:
                failures += 1
                if failures == 1:
                    reason = f"cannot open input device {self._wanted()}: {_one_line(err)}"
                    log.warning("%s: %s; retrying with backoff up to %.1f s", self.name, reason, self.backoff_max_s)
                    if first:  # never opened: say so as a loss, so status shows it
                        lost_at_s = time.monotonic()
                        self._note("device_lost", f"{self.name}: {reason}", reason=reason, device=self._wanted())
                if failures % REINIT_AFTER_FAILURES == 0:
                    _refresh_portaudio()
                self._stop.wait(backoff_s)
                backoff_s = min(2 * backoff_s, self.backoff_max_s)
                continue
            if lost_at_s is not None:
                if not first:  # a device that was never open is not *re*opened
                    self._reopens += 1
                downtime_s = time.monotonic() - lost_at_s
                log.info("%s: device %s reopened after %.1f s (%d attempts)", self.name, self._device_name,
                         downtime_s, failures)
                self._note("device_reopened", f"{self.name}: {self._device_name} reopened after {downtime_s:.1f} s",
                           device=self._device_name, downtime_s=round(downtime_s, 3), attempts=failures,
                           device_rate_hz=self._device_rate_hz, resume_index=self.ring.end_index)
            else:
                log.info("%s: capturing from %s at %d Hz", self.name, self._device_name, self._device_rate_hz)
                self._note("device_opened", f"{self.name}: capturing from {self._device_name}",
                           device=self._device_name, device_rate_hz=self._device_rate_hz)
            first, failures, backoff_s = False, 0, BACKOFF_FIRST_S
            reason = self._watch()
            self._close_stream()
            if reason is None:
                break
            lost_at_s = time.monotonic()
            log.warning("%s: device %s lost (%s); reopening with backoff", self.name, self._device_name, reason)
            self._note("device_lost", f"{self.name}: {self._device_name} lost: {reason}", reason=reason,
                       device=self._device_name, lost_index=self.ring.end_index)

    def _watch(self) -> str | None:
        """Return why the stream was lost, or None when asked to stop. Reports overflow episodes."""
        seen_overflows = self._overflows
        episode_start: tuple[int, int] | None = None  # (overflows, dropped) when the episode began
        last_overflow_s = 0.0
        while not self._stop.wait(WATCH_INTERVAL_S):
            now_s = time.monotonic()
            if self._stream_failed.is_set() or not self._stream.active:
                return "stream stopped (device error or removal)"
            if now_s - self._last_callback_s > self.stall_timeout_s:
                return f"no audio for {self.stall_timeout_s:.1f} s"
            if self._overflows != seen_overflows:
                seen_overflows, last_overflow_s = self._overflows, now_s
                if episode_start is None:
                    episode_start = (self._overflows - 1, self._dropped_samples)
                    log.warning("%s: input overflow: the device delivered faster than we read", self.name)
                    self._note("overflow", f"{self.name}: input overflow", overflows=self._overflows,
                               dropped_samples=self._dropped_samples)
            elif episode_start is not None and now_s - last_overflow_s > OVERFLOW_EPISODE_GAP_S:
                n, dropped = self._overflows - episode_start[0], self._dropped_samples - episode_start[1]
                log.info("%s: overflow episode over: %d overflows, %d samples dropped", self.name, n, dropped)
                self._note("overflow_end", f"{self.name}: overflow episode over ({n} overflows)",
                           overflows_in_episode=n, dropped_in_episode=dropped, overflows=self._overflows,
                           dropped_samples=self._dropped_samples)
                episode_start = None
        return None

    def _wanted(self) -> str:
        return "default" if self.device is None else repr(self.device)

    def _open_stream(self) -> None:
        global _open_streams
        index, info = _resolve_device(self.device)
        n_open, rate_hz = self._choose_format(index, info)
        self._device_name, self._device_rate_hz = info["name"], rate_hz
        self.ring.put(NewStream(rate_hz))  # a fresh resampling stream: no history from before the gap
        self._stream_failed.clear()
        self._next_adc_time_s = None
        self._callback_thread_named = False
        self._last_callback_s = time.monotonic()
        stream = sd.InputStream(device=index, channels=n_open, samplerate=rate_hz, dtype="float32",
                                latency=LATENCY, blocksize=round(rate_hz * self.block_s), callback=self._callback,
                                finished_callback=self._finished_callback)
        with _open_streams_lock:
            _open_streams += 1
        self._stream = stream
        try:
            stream.start()
        except Exception:
            self._close_stream()
            raise
        self.connected = True

    def _choose_format(self, index: int, info: dict) -> tuple[int, int]:
        """(channels to open, rate): the configured device rate (which the device must take), else the
        model rate if the device takes it, else its default rate."""
        max_channels = int(info["max_input_channels"])
        wanted_rate_hz = self.device_rate_hz or self.sample_rate_hz
        if self.channels is not None:
            if max(self.channels) >= max_channels:
                raise ValueError(f"device has {max_channels} input channels; cannot select {self.channels}")
            n_open = max(self.channels) + 1
        else:
            n_open = 1 if _supported(index, 1, wanted_rate_hz) or _supported(index, 1, None) else max_channels
        if _supported(index, n_open, wanted_rate_hz):
            return n_open, wanted_rate_hz
        if self.device_rate_hz is not None:
            raise ValueError(f"device {info['name']!r} does not accept {self.device_rate_hz} Hz with {n_open} "
                             f"channel(s) (its default rate is {int(info['default_samplerate'])} Hz)")
        return n_open, int(info["default_samplerate"])

    def _close_stream(self) -> None:
        """Abort and close the stream, waiting at most CLOSE_TIMEOUT_S.

        PortAudio's ALSA backend can spin forever when the sound server dies before a stream's first
        callback, and then abort() never returns; such a stream is abandoned (logged, noted) so that
        capture can carry on with a new one.
        """
        global _open_streams
        stream, self._stream = self._stream, None
        self.connected = False
        if stream is None:
            return
        closer = threading.Thread(target=_abort_and_close, args=(stream, self.name), daemon=True,
                                  name=f"close-{self.name}")
        closer.start()
        closer.join(CLOSE_TIMEOUT_S)
        if closer.is_alive():
            _abandoned_streams.append(stream)  # keep it referenced: never closed twice
            _skip_portaudio_exit_handler()  # Pa_Terminate at exit would wait for it forever
            log.error("%s: PortAudio did not close the stream within %.1f s; abandoning it", self.name,
                      CLOSE_TIMEOUT_S)
            self._note("device_stuck", f"{self.name}: PortAudio stream stuck; abandoned it",
                       abandoned_streams=len(_abandoned_streams))
            return  # still counted as open: PortAudio must not be re-initialised under it
        with _open_streams_lock:
            _open_streams -= 1


def _skip_portaudio_exit_handler() -> None:
    handler = getattr(sd, "_exit_handler", None)
    if handler is not None:
        atexit.unregister(handler)


def _abort_and_close(stream: sd.InputStream, name: str) -> None:
    for step in (stream.abort, stream.close):
        try:
            step()
        except Exception as err:  # a vanished device may fail to stop cleanly; it is closed anyway
            log.debug("%s: %s: %s", name, step.__name__, err)


def _supported(index: int, channels: int, rate_hz: int | None) -> bool:
    try:
        sd.check_input_settings(device=index, channels=channels, samplerate=rate_hz, dtype="float32")
        return True
    except Exception:
        return False


def _resolve_device(device: str | int | None) -> tuple[int, dict]:
    """An input device by index, by name (exact, else case-insensitive substring), or the default."""
    if device is None:
        index = sd.default.device[0]
        if index is None or index < 0:
            try:
                index = sd.query_devices(kind="input")["index"]
            except sd.PortAudioError:  # PortAudio's own words: "Error querying device -1"
                names = ", ".join(repr(d["name"]) for d in sd.query_devices() if d["max_input_channels"] > 0)
                if not names:
                    raise ValueError("no input device at all (no microphone, or no sound server to reach)") from None
                raise ValueError(f"no default input device; set inputs[].device to one of {names}") from None
    elif isinstance(device, int):
        index = device
    else:
        inputs = [d for d in sd.query_devices() if d["max_input_channels"] > 0]
        matches = [d for d in inputs if d["name"] == device] or [
            d for d in inputs if device.lower() in d["name"].lower()]
        if not matches:
            names = ", ".join(repr(d["name"]) for d in inputs) or "none"
            raise ValueError(f"no input device matches {device!r} (inputs: {names})")
        index = matches[0]["index"]
    info = sd.query_devices(index)
    if info["max_input_channels"] < 1:
        raise ValueError(f"device {index} ({info['name']!r}) has no input channels")
    return int(index), info


def _refresh_portaudio() -> None:
    """Re-enumerate devices (PortAudio sees only those present at initialisation), if no stream is open."""
    with _open_streams_lock:
        if _open_streams:
            return
        try:
            sd._terminate()
            sd._initialize()
            log.info("re-enumerated audio devices")
        except Exception as err:
            log.warning("re-initialising PortAudio failed: %s", _one_line(err))


def list_input_devices() -> list[dict]:
    """Input devices as PortAudio sees them now: index, name, channels, default rate, is default."""
    default_index = sd.default.device[0]
    return [
        {"index": d["index"], "name": d["name"], "max_input_channels": d["max_input_channels"],
         "default_samplerate_hz": int(d["default_samplerate"]), "default": d["index"] == default_index}
        for d in sd.query_devices() if d["max_input_channels"] > 0
    ]


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
