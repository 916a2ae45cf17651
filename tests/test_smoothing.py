"""TagSmoother over score sequences: smoothing, hysteresis, minimum duration, maximum length, hold, flush."""

import pytest

from streamd.smoothing import TagSmoother, TagSmootherConfig

SR = 16000
HOP = 1600  # 0.1 s


def run(cfg, scores, flush=False):
    smoother = TagSmoother("dog", cfg, SR, HOP)
    out = []
    for i, score in enumerate(scores):
        out += [(i, d.kind, d.start_sample // HOP, d.end_sample // HOP, d.reason) for d in smoother.update(score, (i + 1) * HOP)]
    if flush:
        out += [("flush", d.kind, d.start_sample // HOP, d.end_sample // HOP, d.reason) for d in smoother.flush()]
    return out


RAW = TagSmootherConfig(on_threshold=0.5, off_threshold=0.3, window_hops=1)
CASES = [
    ("quiet stays off", RAW, [0.1, 0.2, 0.49], []),
    ("on then off: start/end at hop edges", RAW, [0.1, 0.6, 0.7, 0.2],
     [(1, "start", 1, 2, ""), (3, "end", 1, 3, "off")]),
    ("hysteresis keeps it on between off and on", RAW, [0.6, 0.35, 0.4, 0.31, 0.29],
     [(0, "start", 0, 1, ""), (4, "end", 0, 4, "off")]),
    ("min duration swallows a blip", TagSmootherConfig(0.5, 0.3, 1, min_duration_s=0.3), [0.9, 0.9, 0.1, 0.1], []),
    ("min duration delays the start", TagSmootherConfig(0.5, 0.3, 1, min_duration_s=0.3), [0.9, 0.9, 0.9, 0.9, 0.1],
     [(2, "start", 0, 3, ""), (4, "end", 0, 4, "off")]),
    ("moving mean over 3 hops smooths a spike away", TagSmootherConfig(0.5, 0.3, 3), [0.0, 0.0, 0.9, 0.0, 0.0], []),
    ("moving mean turns on after enough evidence", TagSmootherConfig(0.5, 0.3, 3), [0.6, 0.6, 0.6, 0.0, 0.0, 0.0],
     [(0, "start", 0, 1, ""), (4, "end", 0, 4, "off")]),
    ("median ignores one outlier", TagSmootherConfig(0.5, 0.3, 3, method="median"),
     [0.9, 0.9, 0.0, 0.9, 0.9, 0.0, 0.0], [(0, "start", 0, 1, ""), (6, "end", 0, 6, "off")]),
    ("max length ends and restarts", TagSmootherConfig(0.5, 0.3, 1, max_event_s=0.3), [0.9] * 7 + [0.0],
     [(0, "start", 0, 1, ""), (2, "end", 0, 3, "max_length"), (3, "start", 3, 4, ""),
      (5, "end", 3, 6, "max_length"), (6, "start", 6, 7, ""), (7, "end", 6, 7, "off")]),
    # a hold of 0.3 s (3 hops): off for 2 hops and back is the same event; its end comes once off for 3 hops,
    # with the end of its last hop that was on
    ("a hold bridges a short gap", TagSmootherConfig(0.5, 0.3, 1, hold_s=0.3), [0.9, 0.9, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1],
     [(0, "start", 0, 1, ""), (7, "end", 0, 5, "off")]),
    ("a gap as long as the hold ends the event", TagSmootherConfig(0.5, 0.3, 1, hold_s=0.3),
     [0.9, 0.1, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1],
     [(0, "start", 0, 1, ""), (3, "end", 0, 1, "off"), (4, "start", 4, 5, ""), (7, "end", 4, 5, "off")]),
    ("back between off and on is still off", TagSmootherConfig(0.5, 0.3, 1, hold_s=0.3), [0.9, 0.1, 0.4, 0.45, 0.9],
     [(0, "start", 0, 1, ""), (3, "end", 0, 1, "off"), (4, "start", 4, 5, "")]),
    ("a hold shorter than a hop holds nothing", TagSmootherConfig(0.5, 0.3, 1, hold_s=0.05), [0.1, 0.6, 0.7, 0.2],
     [(1, "start", 1, 2, ""), (3, "end", 1, 3, "off")]),
    ("a hold keeps no unannounced event", TagSmootherConfig(0.5, 0.3, 1, min_duration_s=0.3, hold_s=1.0),
     [0.9, 0.9, 0.1, 0.9, 0.9, 0.9, 0.1], [(5, "start", 3, 6, "")]),
    ("max length counts the held hops", TagSmootherConfig(0.5, 0.3, 1, max_event_s=0.5, hold_s=0.3),
     [0.9, 0.1, 0.1, 0.9, 0.9, 0.9],
     [(0, "start", 0, 1, ""), (4, "end", 0, 5, "max_length"), (5, "start", 5, 6, "")]),
]


@pytest.mark.parametrize("name,cfg,scores,expected", CASES, ids=[c[0] for c in CASES])
def test_smoother_table(name, cfg, scores, expected):
    assert run(cfg, scores) == expected


def test_peak_mean_and_duration_are_of_the_event_hops():
    smoother = TagSmoother("siren", RAW, SR, HOP)
    decisions = []
    for i, s in enumerate([0.1, 0.6, 0.9, 0.3, 0.1]):
        decisions += smoother.update(s, (i + 1) * HOP)
    start, end = decisions
    assert (start.kind, start.peak_score) == ("start", 0.6)
    assert (end.kind, end.reason) == ("end", "off")
    assert end.peak_score == 0.9
    assert end.mean_score == pytest.approx((0.6 + 0.9 + 0.3) / 3)
    assert end.duration_samples == 3 * HOP


def test_a_held_event_counts_its_off_hops_only_when_it_comes_back():
    held = TagSmootherConfig(0.5, 0.3, 1, hold_s=0.3)
    smoother = TagSmoother("smoke_alarm", held, SR, HOP)
    decisions = []
    for i, s in enumerate([0.8, 0.2, 0.1, 0.6, 0.0, 0.0, 0.0]):
        decisions += smoother.update(s, (i + 1) * HOP)
        assert smoother.active == (i < 6)  # announced at hop 0, ended at hop 6 after 3 hops off
    assert [d.kind for d in decisions] == ["start", "end"]
    end = decisions[1]
    assert end.mean_score == pytest.approx((0.8 + 0.2 + 0.1 + 0.6) / 4)  # the gap is inside the event
    assert end.duration_samples == 4 * HOP  # to the end of hop 3, the last one on; published 3 hops later
    smoother = TagSmoother("smoke_alarm", held, SR, HOP)
    decisions = [d for i, s in enumerate([0.8, 0.2, 0.1, 0.0]) for d in smoother.update(s, (i + 1) * HOP)]
    assert decisions[-1].mean_score == 0.8  # never back: the off hops are not the event's


def test_flush_ends_an_announced_event_and_forgets_a_pending_one():
    assert run(RAW, [0.9, 0.9], flush=True)[-1] == ("flush", "end", 0, 2, "flush")
    assert run(TagSmootherConfig(0.5, 0.3, 1, hold_s=1.0), [0.9, 0.9, 0.1], flush=True)[-1] == \
        ("flush", "end", 0, 2, "flush")  # ended while held: at its last hop on
    pending = TagSmootherConfig(0.5, 0.3, 1, min_duration_s=1.0)
    assert run(pending, [0.9, 0.9], flush=True) == []


def test_hysteresis_thresholds_must_be_ordered():
    with pytest.raises(ValueError):
        TagSmoother("x", TagSmootherConfig(on_threshold=0.3, off_threshold=0.5), SR, HOP)
