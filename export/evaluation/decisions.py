"""The service's own keyword trigger and tag smoother over score sequences: where a keyword fires, where a
tag is on, and the threshold tables built from them."""

from __future__ import annotations

import numpy as np

from export.evaluation.streaming import Scored
from export.metrics import OFF_FRACTION, Event, wilson_interval
from streamd.arming import WakeArming
from streamd.choice import KeywordChoice
from streamd.config import KeywordDefaults, TagDefaults
from streamd.gate import KeywordGate
from streamd.smoothing import TagSmoother, TagSmootherConfig
from streamd.triggers import KeywordTrigger, KeywordTriggerConfig

DET_THRESHOLDS = tuple(np.round(np.arange(0.05, 0.951, 0.05), 3)) + (0.97, 0.98, 0.99, 0.995, 0.999)
TAG_WINDOW_S = 0.48  # the tag smoother's window, config.yaml's tag_defaults.window_s (3 hops at 160 ms)


def trigger_config(threshold: float, n_of_m=None, refractory_s=None) -> KeywordTriggerConfig:
    """The service's trigger config at threshold; its defaults unless n_of_m/refractory_s are given."""
    extra = {k: v for k, v in (("n_of_m", n_of_m), ("refractory_s", refractory_s)) if v is not None}
    return KeywordTriggerConfig(threshold=threshold, **extra)


def detections(scores: np.ndarray, end_samples: np.ndarray, name: str, cfg: KeywordTriggerConfig,
               sample_rate_hz: int, hop_samples: int, opened: np.ndarray | None = None) -> list[int]:
    """Where the service's KeywordTrigger fires over one score sequence: the end sample of each firing hop.
    opened [n_hops] (bool): the hops that may fire (the service's gates); None: all.

    Only hops within a margin after a hop at or above threshold are fed: elsewhere the trigger sees
    nothing but misses, which only re-arm it (after M of them) and let time pass (counted by
    end_sample, which is fed as is). So the result equals feeding every hop, much faster."""
    hits = scores >= cfg.threshold
    if not hits.any():
        return []
    m = cfg.n_of_m[1]
    margin = m + int(np.ceil(cfg.refractory_s * sample_rate_hz / hop_samples)) + 1
    fed = np.convolve(hits.astype(np.int64), np.ones(margin + 1, np.int64))[: len(hits)] > 0
    trigger = KeywordTrigger(name, cfg, sample_rate_hz)
    return [int(end_samples[i]) for i in np.flatnonzero(fed)
            if trigger.update(float(scores[i]), int(end_samples[i]), opened is None or bool(opened[i])) is not None]


def armed_detections(scores: dict[str, np.ndarray], end_samples: np.ndarray, cfgs: dict[str, KeywordTriggerConfig],
                     arming: WakeArming, sample_rate_hz: int, opened: dict[str, np.ndarray] | None = None,
                     choice: KeywordChoice | None = None) -> dict[str, list[int]]:
    """Where each keyword is published over its score sequence with wake-word arming and a choice within
    groups (None: none), hop by hop as the service's scheduler does: keywords in arming's order, each hop's
    open set read before any fires, held detections decided after the hop's triggers. opened: per keyword,
    the hops its gates leave open (bool [n_hops]); None: all."""
    names = list(arming.key[0])
    triggers = [KeywordTrigger(name, cfgs[name], sample_rate_hz) for name in names]
    columns = np.stack([scores[name] for name in names], axis=1)
    gates = np.stack([opened[name] if opened else np.ones(len(columns), bool) for name in names], axis=1)
    fired: dict[str, list[int]] = {name: [] for name in names}
    for row, gated, end in zip(columns, gates, end_samples.tolist()):
        hop_open = arming.open(end) & gated
        for k, trigger in enumerate(triggers):
            detection = trigger.update(float(row[k]), end, bool(hop_open[k]))
            if detection is None:
                continue
            arming.fired(k, end)
            if choice is not None and choice.holds(k):
                choice.hold(k, detection)
            else:
                fired[names[k]].append(end)
        if choice is not None and choice.pending:
            for d in choice.hop(row, hop_open, end):
                fired[d.name].append(d.end_sample)
    for d in choice.flush() if choice is not None else []:  # the stream's end
        fired[d.name].append(d.end_sample)
    return fired


class ServiceKeywords:
    """A service config's keyword settings (name -> its effective KeywordDefaults) over a model's score
    sequences as the scheduler applies them: speech and pause gates, trigger, wake-word arming, the choice
    within a group."""

    def __init__(self, settings: dict[str, KeywordDefaults], labels: list[str], hop_samples: int, sample_rate_hz: int):
        self.settings, self.labels = settings, labels
        self.hop_samples, self.rate = hop_samples, sample_rate_hz
        self.names = [k for k in settings if k in labels]
        self.wakes = [settings[k].wake_word(k) for k in self.names]
        self.groups = [settings[k].group_name() for k in self.names]

    def fired(self, scored: Scored, names: list[str] | None = None) -> dict[str, list[int]]:
        """keyword -> end samples where it is published over a stream's scores and levels (names: only these;
        with wake-word arming or groups every keyword is run, as their events depend on each other)."""
        speech = scored.scores[:, self.labels.index("speech")] if "speech" in self.labels else None
        linked = any(self.wakes) or any(self.groups)
        todo = self.names if names is None or linked else names
        scores, opened, cfgs = {}, {}, {}
        for name in todo:
            s = self.settings[name]
            scores[name] = scored.scores[:, self.labels.index(name)]
            opened[name] = (KeywordGate.of(s, self.hop_samples, self.rate).opened(speech, scored.levels_db)
                            if speech is not None else np.ones(len(scored.scores), bool))
            cfgs[name] = KeywordTriggerConfig(s.threshold, tuple(s.n_of_m), s.refractory_s)
        ends = (np.arange(len(scored.scores)) + 1) * self.hop_samples
        if not linked:
            return {n: detections(scores[n], ends, n, cfgs[n], self.rate, self.hop_samples, opened[n]) for n in todo}
        arming = WakeArming(self.names, self.wakes, [round(self.settings[n].after_s * self.rate) for n in self.names])
        choice = KeywordChoice(self.names, self.groups,
                               [round(self.settings[n].group_wait_s * self.rate) for n in self.names],
                               [round(self.settings[n].refractory_s * self.rate) for n in self.names])
        fired = armed_detections(scores, ends, cfgs, arming, self.rate, opened, choice if choice.any else None)
        return fired if names is None else {n: fired[n] for n in names}


def count_detections(scores: np.ndarray, end_samples: np.ndarray, name: str, cfg: KeywordTriggerConfig,
                     sample_rate_hz: int, hop_samples: int, opened: np.ndarray | None = None) -> int:
    return len(detections(scores, end_samples, name, cfg, sample_rate_hz, hop_samples, opened))


def det_table(positives: list[Scored], negative: Scored, label_index: int, name: str, negative_hours: float,
              sample_rate_hz: int, hop_samples: int, thresholds=DET_THRESHOLDS, n_of_m=None,
              refractory_s=None, phases: int = 1) -> list[dict]:
    """Per threshold: false-reject % over positive plays (no detection anywhere in the clip's stream) and
    false accepts per hour of the negative stream. phases: each clip was played this many times (at each
    phase of the hop grid); false_rejects counts plays, the interval counts clips."""
    rows = []
    counted = negative.counted()[:, label_index]  # what may fire
    for t in thresholds:
        cfg = trigger_config(float(t), n_of_m, refractory_s)
        rejected = sum(
            count_detections(p.scores[:, label_index], p.end_samples, name, cfg, sample_rate_hz, hop_samples,
                             p.opened_at(label_index)) == 0
            for p in positives
        )
        fa = count_detections(negative.scores[:, label_index], negative.end_samples, name, cfg, sample_rate_hz,
                              hop_samples, negative.opened_at(label_index)) if len(negative.scores) else 0
        rows.append({
            "threshold": float(t),
            "false_rejects": int(rejected),
            "frr_pct": round(100.0 * rejected / len(positives), 3) if positives else None,
            "frr_ci95_pct": [round(100.0 * v, 1) for v in wilson_interval(rejected / phases, len(positives) // phases)]
            if positives else None,
            "false_accepts": int(fa),
            "fa_per_h": round(fa / negative_hours, 4) if negative_hours > 0 else None,
            # a score stuck high fires once and then never re-arms: this exposes it
            "negative_hops_above_pct": round(100.0 * float(np.mean(counted >= t)), 3)
            if len(negative.scores) else None,
        })
    return rows


def moving_mean(scores: np.ndarray, window: int) -> np.ndarray:
    """[n_hops, k] -> mean over the last `window` hops (fewer at the start), as TagSmoother smooths."""
    csum = np.cumsum(np.vstack([np.zeros((1, scores.shape[1])), scores]), axis=0)
    ends = np.arange(1, len(scores) + 1)
    starts = np.maximum(0, ends - window)
    return (csum[ends] - csum[starts]) / (ends - starts)[:, None]


def smoother_config(hop_samples: int, sample_rate_hz: int, on_threshold: float | None = None) -> TagSmootherConfig:
    """The service's tag smoother at this hop over TAG_WINDOW_S (turned into hops as the service does), at
    its default thresholds or at on_threshold with off at OFF_FRACTION of it."""
    thresholds = {} if on_threshold is None else {"on_threshold": on_threshold,
                                                  "off_threshold": round(OFF_FRACTION * on_threshold, 3)}
    return TagDefaults(window_s=TAG_WINDOW_S, **thresholds).smoother(hop_samples, sample_rate_hz)


def tag_segments(scored: Scored, tags: list[str], label_indices: list[int], sample_rate_hz: int,
                 hop_samples: int, thresholds: dict[str, float] | None = None) -> list[Event]:
    """The service's TagSmoother per tag (default settings, or the given on-thresholds), over TAG_WINDOW_S:
    each ended event is a segment."""
    segments = []
    for tag, column in zip(tags, label_indices):
        cfg = smoother_config(hop_samples, sample_rate_hz, (thresholds or {}).get(tag))
        segments += smoothed_segments(tag, scored.scores[:, column], scored.end_samples, cfg, sample_rate_hz, hop_samples)
    return segments


def smoothed_segments(tag: str, scores: np.ndarray, end_samples: np.ndarray, cfg: TagSmootherConfig,
                      sample_rate_hz: int, hop_samples: int) -> list[Event]:
    """The service's TagSmoother over one tag's scores: each ended event is a segment."""
    smoother = TagSmoother(tag, cfg, sample_rate_hz, hop_samples)
    decisions = []
    for score, end in zip(scores, end_samples):
        decisions += smoother.update(float(score), int(end))
    decisions += smoother.flush()
    return [Event(tag, d.start_sample / sample_rate_hz, d.end_sample / sample_rate_hz)
            for d in decisions if d.kind == "end"]
