"""The scheduler: every model on every stream, one hop at a time, counted in samples.

For each (stream, model) pair a ModelRun holds the model state, the absolute ring index of its next
hop, and the keyword triggers and tag smoothers of that model's labels. ``tick`` steps runs while a
full hop is buffered, keyword models first when behind; a run that falls more than ``max_lag_s``
behind a real-time stream (or whose audio the ring has already overwritten) skips to fresh audio,
resets its state and reports a status event. Non-real-time sources (files with --fast) are pumped
here, just ahead of the slowest run, so they never run ahead of inference.

Because positions are ring indices, the events depend only on the samples, not on how they were
delivered (block sizes, real time or fast).

The per-hop decision work is vectorised where it can be: one numpy comparison per run finds the
labels whose score reaches their trigger threshold (or, for a tag, comes near its on-threshold);
only those, and triggers and smoothers still busy with earlier hops, get a Python update. A quiet
hop (every score below every threshold, no tag event open or pending) costs no per-label work. A
smoother skipped while dormant gets its true window back from the run's score history when it
wakes, so the decisions are exactly those of updating every label at every hop.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from streamd.arming import WakeArming
from streamd.choice import KeywordChoice
from streamd.config import KeywordDefaults, TagDefaults
from streamd.contract import KIND_KEYWORD, KIND_TAG
from streamd.events import Event, KeywordEvent, ScoresEvent, StatusEvent, TagEndEvent, TagStartEvent
from streamd.gate import KeywordGate, SpeechGate, level_db
from streamd.model import Model
from streamd.smoothing import TagDecision, TagSmoother
from streamd.source import Source
from streamd.triggers import Detection, KeywordTrigger, KeywordTriggerConfig

log = logging.getLogger(__name__)

KeywordSettings = dict[str, tuple[KeywordDefaults, bool]]  # name -> (settings, enabled)
TagSettings = dict[str, tuple[TagDefaults, bool]]
HopHook = Callable[["ModelRun", int, np.ndarray], None]  # (run, end_sample, scores)
PAUSE_GATE_MAX_HOP_S = 0.16  # at longer hops a pause must fill a whole hop: the gate misses more short ones
MAX_HOPS_PER_TICK = 64  # then the main loop gets to poll control, heartbeat and watchdog
SPEECH_TAG = "speech"  # the tag the speech gate reads


@dataclass(frozen=True)
class ModelSpec:
    name: str  # in events
    model: Model
    hop_samples: int


class ModelRun:
    """One model on one stream: state, position, triggers, smoothers, counters."""

    def __init__(self, spec: ModelSpec, source: Source, scores_interval_s: float | None):
        self.spec = spec
        self.source = source
        self.sample_rate_hz = source.sample_rate_hz
        self.hop_samples = spec.hop_samples
        self.state = spec.model.new_state()
        self.next_index = source.ring.end_index
        self.labels = spec.model.info.labels
        self.triggers: dict[int, KeywordTrigger] = {}
        self.smoothers: dict[int, TagSmoother] = {}
        # hot-path views of triggers and smoothers, in dict order (the order of their events)
        self._kw: list[tuple[int, KeywordTrigger]] = []
        self._kw_index = np.zeros(0, np.intp)
        self._kw_threshold = np.zeros(0)
        self._kw_awake = np.zeros(0, bool)  # not quiet: updated at every hop
        self._kw_gates: list[KeywordGate] = []  # per trigger
        self._gate: SpeechGate | None = None  # None: no keyword is gated
        self._arming: WakeArming | None = None  # None: no keyword waits for a wake word
        self._choice: KeywordChoice | None = None  # None: no keyword has a group
        self._speech_index = next((i for i, label in enumerate(self.labels)
                                   if label.kind == KIND_TAG and label.name == SPEECH_TAG), None)
        self._tag: list[tuple[int, TagSmoother]] = []
        self._tag_index = np.zeros(0, np.intp)
        self._tag_cold = np.zeros(0)
        self._tag_awake = np.zeros(0, bool)  # not dormant: updated at every hop
        self._tag_valid_from: dict[int, int] = {}  # label -> hop number its smoother's window starts at
        self._history: deque[np.ndarray] = deque(maxlen=1)  # score vectors of the latest hops
        self._hop_no = 0  # hops appended to _history
        self.scores_interval_samples = round(scores_interval_s * self.sample_rate_hz) if scores_interval_s else None
        self._last_scores_sample: int | None = None
        self.hops = 0
        self.lag_skips = 0
        self.busy_s = 0.0

    @property
    def has_keywords(self) -> bool:
        return bool(self.triggers)

    def configure(self, keywords: KeywordSettings, tags: TagSettings) -> list[Event]:
        """Apply thresholds and enabled sets; keeps the state of triggers and smoothers whose settings did not change."""
        events: list[Event] = []
        gates: dict[int, KeywordGate] = {}
        wakes: dict[int, tuple[str | None, int]] = {}  # label -> (wake word, after_s in samples)
        groups: dict[int, tuple[str | None, int, int]] = {}  # label -> (group, group_wait_s, refractory_s in samples)
        for i, label in enumerate(self.labels):
            if label.kind == KIND_KEYWORD:
                wanted = keywords.get(label.name)
                if wanted is None or not wanted[1]:
                    self.triggers.pop(i, None)
                    continue
                s = wanted[0]
                cfg = KeywordTriggerConfig(s.threshold, tuple(s.n_of_m), s.refractory_s)
                if i not in self.triggers or self.triggers[i].cfg != cfg:
                    self.triggers[i] = KeywordTrigger(label.name, cfg, self.sample_rate_hz)
                trigger_refractory = self.triggers[i].refractory_samples
                gates[i] = KeywordGate.of(s, self.hop_samples, self.sample_rate_hz)
                wakes[i] = (s.wake_word(label.name), round(s.after_s * self.sample_rate_hz))
                groups[i] = (s.group_name(), round(s.group_wait_s * self.sample_rate_hz), trigger_refractory)
            elif label.kind == KIND_TAG:
                wanted = tags.get(label.name)
                old = self.smoothers.get(i)
                cfg = None
                if wanted is not None and wanted[1]:
                    cfg = wanted[0].smoother(self.hop_samples, self.sample_rate_hz)
                if old is not None and old.cfg == cfg:
                    continue
                if old is not None:
                    events += self._tag_events(old.flush(), self.next_index)
                    del self.smoothers[i]
                if cfg is not None:
                    self.smoothers[i] = TagSmoother(label.name, cfg, self.sample_rate_hz, self.hop_samples)
                    self._tag_valid_from[i] = self._hop_no
        self._configure_gate([gates[i] for i in self.triggers])
        self._rebuild_views()
        self._configure_arming([wakes[i] for i, _ in self._kw])
        events += self._configure_choice([groups[i] for i, _ in self._kw])
        return events

    def _configure_choice(self, groups: list[tuple[str | None, int, int]]) -> list[Event]:
        """One word, one keyword of a group (streamd/choice.py) over the triggers, in their order; kept, with
        its open windows, while the settings stay the same. Windows open under other settings are decided now."""
        choice = KeywordChoice([t.name for _, t in self._kw], [g for g, _, _ in groups], [w for _, w, _ in groups],
                               [r for _, _, r in groups])
        if self._choice is not None and self._choice.key == choice.key:
            return []
        events = [self._keyword_event(d) for d in self._choice.flush()] if self._choice is not None else []
        self._choice = choice if choice.any else None
        return events

    def _configure_arming(self, wakes: list[tuple[str | None, int]]) -> None:
        """Wake-word arming over the triggers (in their order) if any keyword waits for a wake word; kept,
        with its open windows, while the settings stay the same."""
        names = [t.name for _, t in self._kw]
        arming = WakeArming(names, [w for w, _ in wakes], [n for _, n in wakes])
        for name, (wake, _) in zip(names, wakes):
            if wake is not None and wake not in names:
                log.warning("%s: %s waits for the wake word %s, which is disabled: %s will not fire until it is "
                            "enabled", self.spec.name, name, wake, name)
        if not arming.any:
            self._arming = None
        elif self._arming is None or self._arming.key != arming.key:
            self._arming = arming

    def _configure_gate(self, gates: list[KeywordGate]) -> None:
        """A speech gate over the triggers (in their order) if any keyword asks for a speech or a pause
        gate; kept, with its recent speech scores and levels, while the gates stay the same."""
        gated = any(g.gates for g in gates)
        if gated and self._speech_index is None:
            log.warning("%s has no '%s' tag: its keywords are not speech-gated", self.spec.name, SPEECH_TAG)
        hop_s = self.hop_samples / self.sample_rate_hz
        paused = self._speech_index is not None and any(g.pause > 0 for g in gates)
        if paused and hop_s > PAUSE_GATE_MAX_HOP_S:
            log.warning("%s at a %.0f ms hop: a pause before a keyword must fill a whole hop for the pause gate "
                        "to see it, so it misses more keywords said after speech or over talk; set pause_before: 0, "
                        "or use a hop of %.0f ms (docs/service.md \"Pause gate\")", self.spec.name, 1000 * hop_s,
                        1000 * PAUSE_GATE_MAX_HOP_S)
        if not gated or self._speech_index is None:
            self._gate = None
        elif self._gate is None or gates != self._kw_gates:
            self._gate = SpeechGate.of(gates)
        self._kw_gates = gates

    def _open_triggers(self, end: int) -> np.ndarray:
        """bool per trigger: may this hop count towards firing (speech and pause gates, wake-word arming)?"""
        opened = self._gate.open() if self._gate is not None else np.ones(len(self._kw), bool)
        return opened & self._arming.open(end) if self._arming is not None else opened

    def _rebuild_views(self) -> None:
        self._kw = list(self.triggers.items())
        self._kw_index = np.array([i for i, _ in self._kw], np.intp)
        self._kw_threshold = np.array([t.cfg.threshold for _, t in self._kw], np.float64)
        self._tag = list(self.smoothers.items())
        self._tag_index = np.array([i for i, _ in self._tag], np.intp)
        self._tag_cold = np.array([sm.cold_below for _, sm in self._tag], np.float64)
        self._refresh_awake()
        longest = max((sm.cfg.window_hops for _, sm in self._tag), default=1)
        if longest > self._history.maxlen:
            self._history = deque(self._history, maxlen=longest)

    def _refresh_awake(self) -> None:
        self._kw_awake = np.array([not t.quiet for _, t in self._kw], bool)
        self._tag_awake = np.array([not sm.dormant for _, sm in self._tag], bool)

    def step(self, hook: HopHook | None = None) -> list[Event]:
        audio = self.source.ring.read(self.next_index, self.hop_samples)
        started = time.perf_counter()
        scores, self.state = self.spec.model.step(audio, self.state)
        self.busy_s += time.perf_counter() - started
        self.next_index += self.hop_samples
        self.hops += 1
        end = self.next_index
        if hook is not None:
            hook(self, end, scores)
        events: list[Event] = []
        if len(self._kw):
            kw_scores = scores[self._kw_index]
            # NaN compares False: it counts as a hit candidate, as in KeywordTrigger.update
            todo = self._kw_awake | ~(kw_scores < self._kw_threshold)
            if self._gate is not None:  # pushed every hop, so that its windows are right when read
                self._gate.push(scores[self._speech_index], level_db(audio) if self._gate.uses_levels else 0.0)
            # a closed hop cannot fire: a quiet trigger fed a score below its threshold changes nothing,
            # whether the hop is open or not, so the gates are read only where a trigger is busy
            opened = self._open_triggers(end) if todo.any() else None
            for pos in np.flatnonzero(todo):
                i, trigger = self._kw[pos]
                detection = trigger.update(float(kw_scores[pos]), end, bool(opened[pos]))
                if detection is not None:
                    if self._arming is not None:
                        self._arming.fired(pos, end)
                    if self._choice is not None and self._choice.holds(pos):
                        self._choice.hold(pos, detection)
                    else:
                        events.append(self._keyword_event(detection))
                self._kw_awake[pos] = not trigger.quiet
            if self._choice is not None and self._choice.pending:
                if opened is None:  # no trigger was busy, so none fired: the gates read as they were
                    opened = self._open_triggers(end)
                events += [self._keyword_event(d) for d in self._choice.hop(kw_scores, opened, end)]
        if len(self._tag):
            todo = self._tag_awake | ~(scores[self._tag_index] < self._tag_cold)
            for pos in np.flatnonzero(todo):
                i, smoother = self._tag[pos]
                if not self._tag_awake[pos]:  # it skipped hops while dormant: give it its true window
                    n = min(smoother.cfg.window_hops, self._hop_no - self._tag_valid_from[i])
                    smoother.refill([float(row[i]) for row in list(self._history)[len(self._history) - n:]] if n else [])
                events += self._tag_events(smoother.update(float(scores[i]), end), end)
                self._tag_awake[pos] = not smoother.dormant
        self._history.append(scores)
        self._hop_no += 1
        if self.scores_interval_samples and (self._last_scores_sample is None
                                             or end - self._last_scores_sample >= self.scores_interval_samples):
            self._last_scores_sample = end
            named = {label.name: float(s) for label, s in zip(self.labels, scores)}
            events.append(ScoresEvent(self.source.name, end, self.sample_rate_hz, self.spec.name, self.hop_samples, named))
        return events

    def skip_to(self, index: int, reason: str) -> list[Event]:
        """Drop the audio up to index, start a fresh model state there, and say so."""
        skipped = index - self.next_index
        events = self.flush()
        self.state = self.spec.model.new_state()
        for trigger in self.triggers.values():
            trigger.reset()
        if self._gate is not None:
            self._gate.reset()
        if self._arming is not None:
            self._arming.reset()
        if self._choice is not None:  # its windows were decided by flush; its group's quiet time ends too
            self._choice.reset()
        self._refresh_awake()
        self.next_index = index
        self.lag_skips += 1
        self._last_scores_sample = None
        message = f"{self.spec.name} on {self.source.name}: {reason}; skipped {skipped / self.sample_rate_hz:.2f} s of audio"
        log.warning(message)
        events.append(StatusEvent(self.source.name, index, self.sample_rate_hz, "lag_skip", message,
                                  {"model": self.spec.name, "skipped_samples": skipped, "lag_skips": self.lag_skips}))
        return events

    def flush(self) -> list[Event]:
        """Publish the keywords still held for a choice and end every announced tag event (stream end or reset)."""
        events: list[Event] = [self._keyword_event(d) for d in self._choice.flush()] if self._choice is not None else []
        for smoother in self.smoothers.values():
            events += self._tag_events(smoother.flush(), self.next_index)
        self._tag_valid_from = dict.fromkeys(self.smoothers, self._hop_no)
        self._refresh_awake()
        return events

    def stats(self) -> dict:
        audio_s = self.hops * self.hop_samples / self.sample_rate_hz
        return {
            "stream": self.source.name,
            "model": self.spec.name,
            "hop_samples": self.hop_samples,
            "hops": self.hops,
            "lag_s": round((self.source.ring.end_index - self.next_index) / self.sample_rate_hz, 3),
            "rtf": round(self.busy_s / audio_s, 5) if audio_s else None,
            "lag_skips": self.lag_skips,
        }

    def _keyword_event(self, detection: Detection) -> KeywordEvent:
        return KeywordEvent(self.source.name, detection.end_sample, self.sample_rate_hz, self.spec.name, detection.name,
                            detection.score)

    def _tag_events(self, decisions: list[TagDecision], position: int) -> list[Event]:
        sr, out = self.sample_rate_hz, []
        for d in decisions:
            if d.kind == "start":
                out.append(TagStartEvent(self.source.name, d.end_sample, sr, self.spec.name, d.name, d.start_sample,
                                         d.start_sample / sr, d.peak_score))
            else:
                out.append(TagEndEvent(self.source.name, d.end_sample, sr, self.spec.name, d.name, d.start_sample,
                                       d.start_sample / sr, d.duration_samples / sr, d.peak_score, d.mean_score,
                                       d.reason))
        return out


class Scheduler:
    def __init__(self, sources: list[Source], specs: list[ModelSpec], keywords: KeywordSettings, tags: TagSettings,
                 max_lag_s: float, scores_interval_s: float | None = None, on_hop: HopHook | None = None):
        self.sources = sources
        self.runs = [ModelRun(spec, source, scores_interval_s) for source in sources for spec in specs]
        self.max_lag_s = max_lag_s
        self.on_hop = on_hop
        self.configure(keywords, tags)

    def configure(self, keywords: KeywordSettings, tags: TagSettings) -> list[Event]:
        events = [e for run in self.runs for e in run.configure(keywords, tags)]
        # keyword runs first, then by position: round robin across streams in stream time
        self._priority = lambda run: (not run.has_keywords, run.next_index)
        return events

    def tick(self, max_hops: int = MAX_HOPS_PER_TICK) -> list[Event]:
        """Step up to max_hops hops that are fully buffered; return the events they produced."""
        events: list[Event] = []
        for _ in range(max_hops):
            self._pump_fast_sources()
            run = self._next_run()
            if run is None:
                break
            skip = self._skip_target(run)
            if skip is not None:
                events += run.skip_to(*skip)
                continue
            events += run.step(self.on_hop)
        return events

    def pending(self) -> bool:
        """A full hop is buffered (or a fast source can still deliver one)."""
        return self._next_run() is not None or any(not s.realtime and not s.finished for s in self.sources)

    @property
    def finished(self) -> bool:
        """Every source has delivered its last sample and every whole hop of it has been stepped."""
        return all(s.finished for s in self.sources) and self._next_run() is None

    def flush(self) -> list[Event]:
        return [e for run in self.runs for e in run.flush()]

    def _next_run(self) -> ModelRun | None:
        ready = [r for r in self.runs if r.source.ring.end_index - r.next_index >= r.hop_samples]
        return min(ready, key=self._priority) if ready else None

    def _skip_target(self, run: ModelRun) -> tuple[int, str] | None:
        ring = run.source.ring
        end, oldest = ring.end_index, ring.oldest_index
        fresh = max(oldest, end - run.hop_samples)
        if run.next_index < oldest:
            return fresh, "its audio was overwritten in the ring"
        if run.source.realtime and end - run.next_index > self.max_lag_s * run.sample_rate_hz:
            return fresh, f"more than {self.max_lag_s:g} s behind"
        return None

    def _pump_fast_sources(self) -> None:
        for source in self.sources:
            if source.realtime or source.finished:
                continue
            runs = [r for r in self.runs if r.source is source]
            need = min(r.next_index + r.hop_samples for r in runs) - source.ring.end_index
            if need > 0:
                source.pump(need)
