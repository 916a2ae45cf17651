"""The service: wiring, the main loop, signals, reload, heartbeat, systemd notifications.

Everything that touches a ZeroMQ socket, a model or a decision runs on the main thread; sources
fill their rings from their own threads. The loop: step buffered hops, publish their events, answer
control requests, drain source notes, write due clips, heartbeat, ping the watchdog, then sleep
until there is something to do. The first SIGTERM/SIGINT asks for a graceful stop; a second SIGINT
forces exit.

Sleeping costs the CPU nothing between hops: capture delivers ~10 ms blocks, a hop is 160 ms or
more, so the loop does not wake per block. It polls the control socket and a signal wake-up socket
(`signal.set_wakeup_fd`) until the next hop is due by the clock (the samples still missing at the
stream's rate), the next heartbeat or watchdog ping, or MAX_WAIT_S; a control request or a signal
ends the sleep at once. Close to the hop it waits on the ring itself, which returns as the block
completing the hop lands (the clock only estimates when that is).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import zmq

from streamd import sdnotify
from streamd.clips import ClipSaver, clips_dir
from streamd.config import (Config, ConfigError, bus_endpoint, check_against_models,
                            control_endpoint, hop_samples_for_latency, idle_clip_warning, load_config)
from streamd.contract import KIND_KEYWORD, KIND_TAG
from streamd.control import CommandError, ControlServer
from streamd.events import Event, KeywordEvent, Sequencer, StatusEvent, TagEndEvent, TagStartEvent
from streamd.model import Model, load_model
from streamd.publisher import Publisher
from streamd.scheduler import MAX_HOPS_PER_TICK, ModelSpec, Scheduler
from streamd.sources import open_source

log = logging.getLogger(__name__)

MAX_WAIT_S = 0.25  # longest sleep of the main loop: bounds how late source notes (device lost) go out
RING_WAIT_S = 0.005  # this close to a hop's due time, wait on the ring for the block that completes it
FINISH_BUDGET_S = 1.0  # at stop, time allowed to step the hops already buffered
FORCED_EXIT_CODE = 130


def load_models(config: Config) -> list[ModelSpec]:
    """Load every configured model and check the config against them (ContractError / ConfigError)."""
    models: dict[str, Model] = {}
    for mc in config.models:
        model = load_model(config.resolve(mc.path), threads=mc.threads)
        models[mc.name or model.name] = model
    check_against_models(config, {name: m.info for name, m in models.items()})
    specs = []
    for i, ((name, model), mc) in enumerate(zip(models.items(), config.models)):
        hop = hop_samples_for_latency(model.info, mc.latency_ms, f"models[{i}].latency_ms")
        # a session for its one hop: onnxruntime then folds the graph's shape arithmetic
        specs.append(ModelSpec(name, model.with_hop(hop), hop))
    return specs


def open_sources(config: Config, sample_rate_hz: int, fast: bool):
    sources = []
    for inp in config.inputs:
        spec = inp.source
        if spec.startswith("file:"):
            spec = f"file:{config.resolve(spec[len('file:'):])}"
        sources.append(open_source(spec, inp.name, sample_rate_hz, fast=fast, device=inp.device,
                                   channels=list(inp.channels) if inp.channels else None,
                                   ring_seconds=config.scheduler.ring_s, device_rate_hz=inp.device_sample_rate_hz,
                                   block_s=inp.block_ms / 1000.0))
    return sources


def _warn_idle_clips(config: Config) -> None:
    warning = idle_clip_warning(config)
    if warning:
        log.warning("%s", warning)


class Service:
    def __init__(self, config: Config, config_path: Path | None, fast: bool = False,
                 console: Callable[[bytes], None] | None = None):
        """Load models, open sources, bind sockets. Raises ConfigError, ContractError or SourceError for
        user errors (exit 2) and OSError when a socket cannot be bound (exit 1)."""
        self.config = config
        self.config_path = config_path
        self.console = console
        self.started_monotonic = time.monotonic()
        self._stop_requests = 0
        self._stop_reason = ""
        self._reload_requested = False
        # Caught from here on, before a socket is bound: a SIGTERM during start-up is counted and honoured
        # once run() begins (which then closes at once: no source started, no READY, ipc files removed),
        # never a default death that leaves them behind.
        self._catch_signals()
        self.specs = load_models(config)
        self.sample_rate_hz = self.specs[0].model.info.sample_rate_hz
        self.keywords = config.keyword_settings()
        self.tags = config.tag_settings()
        self.clips = None
        if config.clips.enabled:
            c, folder = config.clips, clips_dir(config)
            try:  # before any source is opened: a folder that cannot be made is a config error (exit 2)
                self.clips = ClipSaver(folder, self.sample_rate_hz, c.pre_roll_s, c.post_roll_s, c.max_count, c.max_bytes)
            except OSError as err:
                raise ConfigError(f"clips.dir: cannot create or use {str(folder)!r}: {err.strerror or err}") from None
        _warn_idle_clips(config)
        self.sources = open_sources(config, self.sample_rate_hz, fast)
        self.scheduler = Scheduler(self.sources, self.specs, self.keywords, self.tags, config.scheduler.max_lag_s,
                                   config.bus.scores_interval_s if config.bus.scores else None)
        self.sequencer = Sequencer()
        self.hops_per_tick = MAX_HOPS_PER_TICK
        if self.clips and any(not s.realtime for s in self.sources):
            # a fast source moves as far as a tick steps: at most a quarter of the ring, so that a clip is copied
            # out of the ring before it overwrites the pre-roll of the tick's first event
            longest_hop = max(spec.hop_samples for spec in self.specs)
            self.hops_per_tick = max(1, int(config.scheduler.ring_s * self.sample_rate_hz / 4 / longest_hop))
        self.publisher = Publisher(bus_endpoint(config), config.bus.high_water_mark, config.bus.drop_for_all,
                                   config.bus.linger_ms, self.sequencer)
        try:
            self.control = ControlServer(control_endpoint(config), self)
        except OSError:
            self.publisher.close()
            raise
        self._runs_by_source = [(source, [r for r in self.scheduler.runs if r.source is source])
                                for source in self.sources]
        self._poller: zmq.Poller | None = None
        self._signal_r: socket.socket | None = None
        self._signal_w: socket.socket | None = None

    # ------------------------------------------------------------------------------ main loop

    def run(self, wait_for_subscriber_s: float = 0.0) -> int:
        self._install_signals()
        if wait_for_subscriber_s > 0:
            self._wait_for_subscriber(wait_for_subscriber_s)  # returns at once on a stop request
        if self._stop_requests:  # asked to stop during start-up: open no device, announce nothing, close
            return self._shutdown(started=False)
        for source in self.sources:
            source.start()
        sdnotify.ready(f"listening on {', '.join(s.name for s in self.sources)}")
        self._emit(self._status("running", "started"))
        heartbeat_s = self.config.heartbeat.interval_s
        watchdog = sdnotify.watchdog_interval_s()
        next_heartbeat = time.monotonic() + heartbeat_s
        next_watchdog = time.monotonic()
        next_watchdog_or_never = math.inf
        while not self._stop_requests:
            if self._reload_requested:
                self._reload_requested = False
                try:
                    self.reload()
                except CommandError:
                    pass  # logged and published as reload_failed; the running config stays
            for event in self.scheduler.tick(self.hops_per_tick):
                self._emit(event)
            self.control.poll()
            self._drain_notes()
            if self.clips:
                self.clips.service()
            now = time.monotonic()
            if now >= next_heartbeat:
                self._emit(self._status("running", "heartbeat"))
                next_heartbeat = now + heartbeat_s
            if watchdog and now >= next_watchdog:
                sdnotify.watchdog()
                next_watchdog = now + watchdog / 2
                next_watchdog_or_never = next_watchdog
            if self.scheduler.finished:
                self._stop_reason = "every source finished"
                break
            if not self.scheduler.pending() and not self._stop_requests and not self._reload_requested:
                self._sleep(min(next_heartbeat, next_watchdog_or_never))
        return self._shutdown()

    def _sleep(self, until: float) -> None:
        """Until the next hop is due, a control request, a signal, `until` or MAX_WAIT_S, whichever is first."""
        timeout_s = min(until - time.monotonic(), MAX_WAIT_S)
        due = self._next_hop_due()
        if due is not None:
            source, needed_index, eta_s = due
            if eta_s <= RING_WAIT_S:
                self._wait_on_ring(source, needed_index, min(timeout_s, eta_s + RING_WAIT_S))
                return
            timeout_s = min(timeout_s, eta_s - RING_WAIT_S)
        if timeout_s > 0:
            self._poll(timeout_s)

    def _next_hop_due(self):
        """(source, index that completes the hop, seconds until it is due by the clock) of the live stream whose
        next hop is due first; None without a live real-time stream."""
        best = None
        for source, runs in self._runs_by_source:
            if not source.realtime or source.finished or not runs:
                continue
            needed = min(r.next_index + r.hop_samples for r in runs)
            eta_s = (needed - source.ring.end_index) / source.sample_rate_hz
            if best is None or eta_s < best[2]:
                best = (source, needed, eta_s)
        return best

    def _wait_on_ring(self, source, needed_index: int, timeout_s: float) -> None:
        """Until the source's ring holds the sample before needed_index (each block wakes the wait; only this
        loop sees those), the source finishes, or timeout_s."""
        deadline = time.monotonic() + timeout_s
        while not self._stop_requests and not source.finished:
            left = deadline - time.monotonic()
            if left <= 0 or source.ring.wait_beyond(needed_index - 1, left):
                return

    def _poll(self, timeout_s: float) -> None:
        """Sleep on the control socket and the signal wake-up socket."""
        if self._poller is None:  # not running (signals not installed): a plain bounded sleep
            time.sleep(timeout_s)
            return
        ready = dict(self._poller.poll(math.ceil(timeout_s * 1000)))
        if self._signal_r is not None and self._signal_r.fileno() in ready:
            try:
                while self._signal_r.recv(64):
                    pass
            except BlockingIOError:
                pass

    def _wait_for_subscriber(self, timeout_s: float) -> None:
        """Hold the audio until someone subscribes (tests, evaluations): no event is lost to a slow joiner."""
        deadline = time.monotonic() + timeout_s
        while not self._stop_requests and self.publisher.subscriber_count == 0 and time.monotonic() < deadline:
            self.control.poll()
            time.sleep(0.005)

    def _shutdown(self, started: bool = True) -> int:
        """Stop the sources, finish the hops they buffered (if they ever started), say so, close the sockets."""
        reason = self._stop_reason or "stop requested"
        log.info("stopping: %s%s", reason, "" if started else " (during start-up, before any source started)")
        sdnotify.stopping("stopping")
        for source in self.sources:
            source.stop()
        if started:  # a file source that never started would otherwise be read here
            deadline = time.monotonic() + FINISH_BUDGET_S
            while self.scheduler.pending() and time.monotonic() < deadline:
                for event in self.scheduler.tick(self.hops_per_tick):
                    self._emit(event)
                if self.clips:
                    self.clips.service()
            if self.scheduler.pending():
                log.warning("stopped with unprocessed audio: the %.1f s budget to finish buffered hops ran out", FINISH_BUDGET_S)
            for event in self.scheduler.flush():
                self._emit(event)
        self._drain_notes()
        if self.clips:
            self.clips.service(finishing=True)
        self._emit(self._status("stopping", f"stopped: {reason}"))
        self._poller = None
        self.control.close()
        self.publisher.close()
        if self._signal_w is not None:
            signal.set_wakeup_fd(-1)
            self._signal_r.close()
            self._signal_w.close()
            self._signal_r = self._signal_w = None
        return 0

    def _install_signals(self) -> None:
        # A signal's byte on this socket wakes the main loop's poll at once, whichever thread the kernel
        # delivered the signal to (Python runs the handler itself on the main thread).
        self._signal_r, self._signal_w = socket.socketpair()
        self._signal_r.setblocking(False)
        self._signal_w.setblocking(False)
        signal.set_wakeup_fd(self._signal_w.fileno(), warn_on_full_buffer=False)
        self._poller = zmq.Poller()
        # ControlServer keeps its REP socket private; it is only polled here, never read or written
        self._poller.register(self.control.socket, zmq.POLLIN)
        self._poller.register(self._signal_r.fileno(), zmq.POLLIN)

    def _catch_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, lambda signum, frame: setattr(self, "_reload_requested", True))

    def _on_stop_signal(self, signum, frame) -> None:
        self._stop_requests += 1
        name = signal.Signals(signum).name
        if self._stop_requests == 1:
            self._stop_reason = name
        elif signum == signal.SIGINT:
            sys.stderr.write("streamd: second SIGINT, exiting now without a clean stop\n")
            os._exit(FORCED_EXIT_CODE)

    # ------------------------------------------------------------------------------ events

    def _emit(self, event: Event) -> None:
        topic, body = self.sequencer.encode(event)
        self.publisher.send(topic, body)
        if self.console is not None:
            self.console(body)
        if self.clips is not None:
            self._keep_clip(event, body)

    def _clips(self, kind: str, name: str) -> bool:
        """Do this keyword's or tag's events keep a clip now?"""
        return self.clips is not None and self.config.keeps_clip(kind, name)

    def _keep_clip(self, event: Event, body: bytes) -> None:
        """A keyword event's clip; a tag event's whole (clips.tags, or the tag's own clip:), opened at its start and
        named at its end. A clip opened is closed whatever a reload said meanwhile; one asked for at the end alone
        is cut from what the ring holds."""
        if isinstance(event, KeywordEvent):
            if self._clips(KIND_KEYWORD, event.keyword):
                ring = self._ring(event.stream)
                self.clips.request(ring, event.position_samples, self._clip_stem(event.keyword), body)
        elif isinstance(event, TagStartEvent):
            if self._clips(KIND_TAG, event.tag):
                self.clips.open((event.stream, event.model, event.tag), self._ring(event.stream), event.start_samples)
        elif isinstance(event, TagEndEvent):
            key = (event.stream, event.model, event.tag)
            if self.clips.is_open(key) or self._clips(KIND_TAG, event.tag):
                self.clips.close(key, self._ring(event.stream), event.position_samples, self._clip_stem(event.tag),
                                 body, event.start_samples)

    def _ring(self, stream: str):
        return next(s for s in self.sources if s.name == stream).ring

    def _clip_stem(self, label: str) -> str:
        """The name of the clip of the event just published."""
        return f"{time.strftime('%Y%m%d-%H%M%S')}-{self.sequencer.next_seq - 1:06d}-{label}"

    def _drain_notes(self) -> None:
        for source in self.sources:
            for note in source.drain_notes():
                log.info("%s", note.message)
                self._emit(StatusEvent(source.name, source.ring.end_index, self.sample_rate_hz, note.kind, note.message,
                                       dict(note.detail)))

    def _status(self, state: str, message: str) -> StatusEvent:
        return StatusEvent(None, None, None, state, message, self.status())

    # ------------------------------------------------------------------------------ control target

    def status(self) -> dict:
        return {
            "uptime_s": round(time.monotonic() - self.started_monotonic, 3),
            "pid": os.getpid(),
            "streams": {s.name: {"position_samples": s.ring.end_index, "finished": s.finished, **s.counters()}
                        for s in self.sources},
            "models": [{"name": spec.name, "family": spec.model.info.family, "hop_samples": spec.hop_samples,
                        "latency_ms": spec.model.info.hop_ms(spec.hop_samples),
                        "sample_rate_hz": spec.model.info.sample_rate_hz} for spec in self.specs],
            "runs": [run.stats() for run in self.scheduler.runs],
            "bus": {"endpoint": self.publisher.endpoint, "subscriptions": self.publisher.subscriber_count,
                    "sent_events": self.publisher.sent_events, "dropped_events": self.publisher.dropped_events},
            "keywords": {n: {"threshold": s.threshold, "enabled": on, "after": s.wake_word(n), "group": s.group_name(),
                             "clip": self._clips(KIND_KEYWORD, n)} for n, (s, on) in self.keywords.items()},
            "tags": {n: {"on_threshold": s.on_threshold, "off_threshold": s.off_threshold, "hold_s": s.hold_s,
                         "enabled": on, "clip": self._clips(KIND_TAG, n)} for n, (s, on) in self.tags.items()},
            "clips_saved": self.clips.saved if self.clips else 0,
            "clips_failed": self.clips.failed if self.clips else 0,  # could not be written (disk full, ...)
            "clips_refused": self.clips.refused if self.clips else 0,  # too many waiting for their post-roll
        }

    def set_threshold(self, name: str, threshold: float, off_threshold: float | None) -> dict:
        kind = self._kind_of(name)
        if kind == KIND_KEYWORD:
            settings, enabled = self.keywords.get(name, (self.config.keyword_defaults, False))
            self.keywords[name] = (dataclasses.replace(settings, threshold=threshold), enabled)
        else:
            settings, enabled = self.tags.get(name, (self.config.tag_defaults, False))
            off = off_threshold if off_threshold is not None else min(settings.off_threshold, threshold)
            if off > threshold:
                raise CommandError(f"off_threshold {off} must not exceed threshold {threshold}")
            self.tags[name] = (dataclasses.replace(settings, on_threshold=threshold, off_threshold=off), enabled)
        self._apply_settings()
        return {"name": name, "kind": kind}

    def set_enabled(self, name: str, enabled: bool) -> dict:
        table, defaults = ((self.keywords, self.config.keyword_defaults) if self._kind_of(name) == KIND_KEYWORD
                           else (self.tags, self.config.tag_defaults))
        table[name] = (table.get(name, (defaults, enabled))[0], enabled)
        self._apply_settings()
        return {"name": name, "enabled": enabled}

    def reload(self) -> dict:
        """Re-read thresholds and enabled sets from the config file; a bad file changes nothing."""
        if self.config_path is None:
            raise CommandError("no config file to reload (started with the built-in defaults)")
        try:
            new = load_config(self.config_path)
            # the models section is restart-only: check labels against the models that are running
            check_against_models(dataclasses.replace(new, models=self.config.models),
                                 {spec.name: spec.model.info for spec in self.specs})
        except ConfigError as err:
            log.warning("reload refused, keeping the running config: %s", err)
            self._emit(self._status("reload_failed", f"reload refused: {err}"))
            raise CommandError(f"reload refused: {err}") from None
        restart_only = [f.name for f in dataclasses.fields(Config)
                        if f.name not in ("keyword_defaults", "keywords", "tag_defaults", "tags", "base_dir")
                        and getattr(new, f.name) != getattr(self.config, f.name)]
        if restart_only:
            log.warning("reload: changes to %s apply only after a restart", ", ".join(restart_only))
        self.config = dataclasses.replace(self.config, keyword_defaults=new.keyword_defaults, keywords=new.keywords,
                                          tag_defaults=new.tag_defaults, tags=new.tags)
        self.keywords, self.tags = new.keyword_settings(), new.tag_settings()
        _warn_idle_clips(self.config)
        self._apply_settings()
        log.info("reloaded %s: %d keywords, %d tags", self.config_path, len(self.keywords), len(self.tags))
        self._emit(self._status("reloaded", f"reloaded {self.config_path}"))
        return {"reloaded": str(self.config_path), "restart_needed_for": restart_only}

    def _apply_settings(self) -> None:
        for event in self.scheduler.configure(self.keywords, self.tags):
            self._emit(event)

    def _kind_of(self, name: str) -> str:
        for spec in self.specs:
            for label in spec.model.info.labels:
                if label.name == name:
                    return label.kind
        raise CommandError(f"no keyword or tag named {name!r} in the loaded models")
