"""The fast decision paths give exactly the decisions of the plain definitions.

TagSmoother keeps a running sum / sorted window and KeywordTrigger a running hit count; ModelRun
skips the updates of quiet triggers and dormant smoothers on quiet hops. Each is checked here against
a straightforward reference (the definitions as first written: recompute everything at every hop)
on random score sequences made to sit on and near the thresholds, with NaN and inf mixed in.
"""

from collections import deque

import numpy as np
import pytest

from streamd.config import KeywordDefaults, TagDefaults
from streamd.contract import KIND_KEYWORD, KIND_TAG
from streamd.ring import RingBuffer
from streamd.scheduler import ModelSpec, Scheduler
from streamd.smoothing import TagSmoother, TagSmootherConfig
from streamd.triggers import KeywordTrigger, KeywordTriggerConfig

SR = 16000
HOP = 1600


class ReferenceSmoother:
    """TagSmoother's definition, recomputed from the whole window at every hop."""

    def __init__(self, cfg: TagSmootherConfig):
        self.cfg = cfg
        self.window = deque(maxlen=cfg.window_hops)
        self.state, self.start, self.last_end, self.scores = "off", 0, 0, []
        self.min_samples = round(cfg.min_duration_s * SR)
        self.max_samples = max(HOP, round(cfg.max_event_s * SR))

    def update(self, score, end):
        self.window.append(float(score))
        values = np.fromiter(self.window, np.float64)
        level = float(np.median(values) if self.cfg.method == "median" else values.mean())
        if self.state == "off":
            if level < self.cfg.on_threshold:
                return []
            self.state, self.start, self.scores = "pending", end - HOP, []
        elif level < self.cfg.off_threshold:
            out = [("end", self.start, self.last_end, "off")] if self.state == "on" else []
            self.state = "off"
            return out
        self.scores.append(float(score))
        self.last_end = end
        out = []
        if self.state == "pending" and end - self.start >= self.min_samples:
            self.state = "on"
            out.append(("start", self.start, self.last_end, ""))
        if self.state == "on" and end - self.start >= self.max_samples:
            out.append(("end", self.start, self.last_end, "max_length"))
            self.state, self.start, self.scores = "pending", end, []
        return out


class ReferenceTrigger:
    def __init__(self, cfg: KeywordTriggerConfig):
        self.cfg = cfg
        self.recent = deque(maxlen=cfg.n_of_m[1])
        self.armed, self.last = True, None
        self.refractory = round(cfg.refractory_s * SR)

    def update(self, score, end):
        self.recent.append(float(score))
        if sum(s >= self.cfg.threshold for s in self.recent) < self.cfg.n_of_m[0]:
            self.armed = True
            return None
        if not self.armed or (self.last is not None and end - self.last < self.refractory):
            return None
        self.armed, self.last = False, end
        return max(self.recent)


def nasty_scores(rng, n, thresholds):
    """Scores on, just around and far from the thresholds, long quiet stretches, some NaN and inf."""
    pool = [t + d for t in thresholds for d in (0.0, 1e-12, -1e-12, 1e-7, -1e-7)] + [0.0, 0.1, 0.2, 0.3, 0.9, 1.0]
    out = []
    while len(out) < n:
        kind = rng.random()
        if kind < 0.3:
            out += [float(x) for x in rng.uniform(0.0, 0.2, rng.integers(1, 30))]  # quiet stretch
        elif kind < 0.8:
            out += [float(rng.choice(pool)) for _ in range(rng.integers(1, 8))]
        elif kind < 0.97:
            out += [float(x) for x in rng.uniform(0.0, 1.0, rng.integers(1, 10))]
        else:
            out.append(float(rng.choice([np.nan, np.inf, -np.inf])))
    return out[:n]


SMOOTHER_CONFIGS = [
    TagSmootherConfig(0.5, 0.3, 3, "mean"),
    TagSmootherConfig(0.5, 0.3, 3, "median", min_duration_s=0.2),
    TagSmootherConfig(0.3, 0.3, 4, "median", max_event_s=0.5),
    TagSmootherConfig(0.7, 0.1, 7, "mean", min_duration_s=0.3, max_event_s=1.0),
    TagSmootherConfig(0.1, 0.1 / 3, 1, "mean"),
]


@pytest.mark.parametrize("cfg", SMOOTHER_CONFIGS, ids=lambda c: f"{c.method}-{c.window_hops}")
@pytest.mark.parametrize("seed", range(4))
def test_smoother_matches_the_plain_definition(cfg, seed):
    scores = nasty_scores(np.random.default_rng(seed), 3000, [cfg.on_threshold, cfg.off_threshold])
    fast, ref = TagSmoother("t", cfg, SR, HOP), ReferenceSmoother(cfg)
    for k, score in enumerate(scores):
        got = [(d.kind, d.start_sample, d.end_sample, d.reason) for d in fast.update(score, (k + 1) * HOP)]
        assert got == ref.update(score, (k + 1) * HOP), f"hop {k}, score {score!r}"


def test_mean_on_the_threshold_is_decided_like_numpy():
    # 0.1 + 0.2 + 0.3 summed in different orders differ in the last bit; the threshold is that mean
    cfg = TagSmootherConfig(on_threshold=float(np.mean([0.1, 0.2, 0.3])), off_threshold=0.0, window_hops=3)
    fast, ref = TagSmoother("t", cfg, SR, HOP), ReferenceSmoother(cfg)
    for k, score in enumerate([0.3, 0.0, 0.0, 0.1, 0.2, 0.3]):
        assert [d.kind for d in fast.update(score, (k + 1) * HOP)] == [d[0] for d in ref.update(score, (k + 1) * HOP)]
    assert fast.active


TRIGGER_CONFIGS = [KeywordTriggerConfig(0.5, (1, 1), 0.0), KeywordTriggerConfig(0.5, (2, 3), 0.3),
                   KeywordTriggerConfig(0.9, (3, 5), 1.0)]


@pytest.mark.parametrize("cfg", TRIGGER_CONFIGS, ids=lambda c: f"{c.n_of_m}")
@pytest.mark.parametrize("seed", range(4))
def test_trigger_matches_the_plain_definition(cfg, seed):
    scores = nasty_scores(np.random.default_rng(seed), 3000, [cfg.threshold])
    fast, ref = KeywordTrigger("k", cfg, SR), ReferenceTrigger(cfg)
    for k, score in enumerate(scores):
        d = fast.update(score, (k + 1) * HOP)
        want = ref.update(score, (k + 1) * HOP)
        got = None if d is None else d.score
        assert got == want or (got != got and want != want), f"hop {k}"  # NaN == NaN here


# ------------------------------------------------------------------ ModelRun skips quiet labels


def same(events):
    """NaN scores compare equal (a NaN score is reported as NaN by both)."""
    return [tuple("nan" if isinstance(x, float) and x != x else x for x in e) for e in events]


class Label:
    def __init__(self, name, kind):
        self.name, self.kind = name, kind


class Info:
    sample_rate_hz = SR

    def __init__(self, labels):
        self.labels = labels


class ScriptedModel:
    """Returns the next row of a score table at every step."""

    def __init__(self, table, labels):
        self.table, self.info, self.i = table, Info(labels), 0

    def new_state(self):
        return {}

    def step(self, audio, state):
        row = self.table[self.i]
        self.i += 1
        return row.copy(), state


class Pushed:
    realtime, finished, name, sample_rate_hz = True, False, "s", SR

    def __init__(self):
        self.ring = RingBuffer(SR * 600)


def scripted_run(table, labels, keywords, tags, reconfigure_at=None, reconfigured=None, amplitudes=None):
    """The scheduler over scripted scores; the audio is silence, or a constant amplitudes[k] in hop k."""
    source = Pushed()
    scheduler = Scheduler([source], [ModelSpec("m", ScriptedModel(table, labels), HOP)], keywords, tags, 1e9)
    events = []
    for k in range(len(table)):
        if k == reconfigure_at:
            events += scheduler.configure(*reconfigured)
        source.ring.write(np.full(HOP, 0.0 if amplitudes is None else amplitudes[k], np.float32))
        events += scheduler.tick(max_hops=10)
    events += scheduler.flush()
    return [(type(e).__name__, e.position_samples, getattr(e, "keyword", None) or getattr(e, "tag", None),
             getattr(e, "score", None), getattr(e, "peak_score", None)) for e in events]


def naive_run(table, labels, keywords, tags, reconfigure_at=None, reconfigured=None, opened=None):
    """Every configured label updated at every hop, events in the scheduler's order; opened [n_hops, n_labels]:
    which keyword hops may fire (the gates), all where None."""
    def build(kw, tg):
        trig = {i: KeywordTrigger(lb.name, KeywordTriggerConfig(kw[lb.name][0].threshold, tuple(kw[lb.name][0].n_of_m),
                                                                kw[lb.name][0].refractory_s), SR)
                for i, lb in enumerate(labels) if lb.kind == KIND_KEYWORD and kw.get(lb.name, (0, False))[1]}
        smo = {}
        for i, lb in enumerate(labels):
            if lb.kind == KIND_TAG and tg.get(lb.name, (0, False))[1]:
                s = tg[lb.name][0]
                smo[i] = TagSmoother(lb.name, TagSmootherConfig(s.on_threshold, s.off_threshold, s.window_hops, s.method,
                                                               s.min_duration_s, s.max_event_s), SR, HOP)
        return trig, smo

    trig, smo = build(keywords, tags)
    events = []
    for k, row in enumerate(table):
        if k == reconfigure_at:  # the test reconfigures only thresholds of tags that are off: fresh smoothers
            new_trig, new_smo = build(*reconfigured)
            trig = {i: (trig[i] if i in trig and trig[i].cfg == t.cfg else t) for i, t in new_trig.items()}
            smo = {i: (smo[i] if i in smo and smo[i].cfg == s.cfg else s) for i, s in new_smo.items()}
        end = (k + 1) * HOP
        for i, t in trig.items():
            d = t.update(float(row[i]), end, True if opened is None else bool(opened[k, i]))
            if d is not None:
                events.append(("KeywordEvent", d.end_sample, d.name, d.score, None))
        for i, s in smo.items():
            for d in s.update(float(row[i]), end):
                events.append(("TagStartEvent" if d.kind == "start" else "TagEndEvent", d.end_sample, d.name, None,
                               d.peak_score))
    for s in smo.values():
        for d in s.flush():
            events.append(("TagEndEvent", d.end_sample, d.name, None, d.peak_score))
    return events


@pytest.mark.parametrize("seed", range(3))
def test_model_run_skipping_quiet_labels_gives_the_events_of_updating_all(seed):
    rng = np.random.default_rng(seed)
    labels = [Label(f"k{i}", KIND_KEYWORD) for i in range(4)] + [Label(f"t{i}", KIND_TAG) for i in range(8)]
    keywords = {"k0": (KeywordDefaults(0.5, (1, 1), 0.3), True), "k1": (KeywordDefaults(0.7, (2, 3), 0.5), True),
                "k2": (KeywordDefaults(0.5, (1, 1), 0.0), False)}  # k3 not configured
    tags = {f"t{i}": (TagDefaults(0.5, 0.3, w, m, 0.2, 2.0), True)
            for i, (w, m) in enumerate([(3, "mean"), (3, "median"), (5, "mean"), (1, "mean"), (4, "median"), (7, "mean")])}
    n = 2000
    table = np.zeros((n, len(labels)), np.float32)
    for j in range(len(labels)):
        thresholds = [0.5, 0.3, 0.7]
        table[:, j] = np.float32(nasty_scores(rng, n, thresholds))
    got = scripted_run(table, labels, keywords, tags)
    assert same(got) == same(naive_run(table, labels, keywords, tags))
    assert sum(1 for e in got if e[0] == "TagStartEvent") > 20 and sum(1 for e in got if e[0] == "KeywordEvent") > 20


def test_quiet_hops_do_no_per_label_work(monkeypatch):
    labels = [Label("k", KIND_KEYWORD), Label("t", KIND_TAG)]
    table = np.full((50, 2), 0.1, np.float32)
    table[20:25] = 0.9  # one loud stretch
    calls = []
    monkeypatch.setattr(KeywordTrigger, "update",
                        lambda self, s, e, o=True, f=KeywordTrigger.update: calls.append(e) or f(self, s, e, o))
    monkeypatch.setattr(TagSmoother, "update", lambda self, s, e, f=TagSmoother.update: calls.append(e) or f(self, s, e))
    got = scripted_run(table, labels, {"k": (KeywordDefaults(0.5, (1, 1), 0.0), True)},
                       {"t": (TagDefaults(0.5, 0.3, 3, "mean", 0.0, 30.0), True)})
    assert [e[:3] for e in got] == [("KeywordEvent", 21 * HOP, "k"), ("TagStartEvent", 22 * HOP, "t"),
                                    ("TagEndEvent", 27 * HOP, "t")]
    hops_updated = sorted({e // HOP - 1 for e in calls})
    # the loud hops, then the smoother until its window is quiet again; nothing before or after
    assert hops_updated == list(range(20, 28))


def test_reconfigure_mid_stream_matches_updating_all():
    rng = np.random.default_rng(7)
    labels = [Label("k", KIND_KEYWORD), Label("a", KIND_TAG), Label("b", KIND_TAG)]
    table = np.float32(np.stack([nasty_scores(rng, 1500, [0.5, 0.3]) for _ in labels], axis=1))
    kw = {"k": (KeywordDefaults(0.5, (2, 3), 0.3), True)}
    tags1 = {"a": (TagDefaults(0.5, 0.3, 3, "mean", 0.0, 30.0), True), "b": (TagDefaults(0.5, 0.3, 3, "median", 0.0, 30.0), False)}
    tags2 = {"a": tags1["a"], "b": (TagDefaults(0.6, 0.3, 5, "mean", 0.0, 30.0), True)}
    got = scripted_run(table, labels, kw, tags1, 700, (kw, tags2))
    assert same(got) == same(naive_run(table, labels, kw, tags1, 700, (kw, tags2)))
