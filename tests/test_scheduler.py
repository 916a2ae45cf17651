"""The scheduler: events depend only on the samples, not on delivery; lag skips; keyword priority; reconfigure."""

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).parent))
import tiny_model  # noqa: E402

from streamd.config import KeywordDefaults, TagDefaults  # noqa: E402
from streamd.events import KeywordEvent, StatusEvent, TagEndEvent, TagStartEvent  # noqa: E402
from streamd.model import load_model  # noqa: E402
from streamd.ring import RingBuffer  # noqa: E402
from streamd.scheduler import ModelSpec, Scheduler  # noqa: E402

SR = tiny_model.SAMPLE_RATE_HZ
KEYWORDS = {"yes": (KeywordDefaults(0.9, (2, 3), 1.0), True)}
TAGS = {"siren": (TagDefaults(0.5, 0.3, 3, "mean", 0.2, 30.0), True)}
AUDIO = tiny_model.tone_bursts([(0.5, 1.0), (1.6, 2.6), (2.8, 3.0)], 3.5)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_model(tiny_model.build(tmp_path_factory.mktemp("m") / "tiny.onnx"))


class PushedSource:
    """A real-time source whose ring the test fills block by block."""

    realtime = True

    def __init__(self, name="mic", seconds=30.0):
        self.name, self.sample_rate_hz = name, SR
        self.ring = RingBuffer(int(seconds * SR))
        self.finished = False

    def write(self, block):
        self.ring.write(block)


def run_blocks(model, block, hop=1600, max_lag_s=60.0):
    source = PushedSource()
    scheduler = Scheduler([source], [ModelSpec("tiny", model, hop)], KEYWORDS, TAGS, max_lag_s)
    events = []
    for start in range(0, len(AUDIO), block):
        source.write(AUDIO[start:start + block])
        events += scheduler.tick(max_hops=10_000)
    return events + scheduler.flush()


def test_expected_events_for_the_bursts(model):
    events = run_blocks(model, 4096)
    kinds = [(type(e).__name__, round(e.position_samples / SR, 2)) for e in events]
    # 2 of 3 hops >= 0.9: the second full hop of a burst fires; the 0.2 s gap before the third burst
    # re-arms the keyword (its refractory is over) but is too short to end the smoothed siren
    assert kinds == [
        ("KeywordEvent", 0.8), ("TagStartEvent", 0.8), ("TagEndEvent", 1.3),
        ("KeywordEvent", 1.9), ("TagStartEvent", 1.9), ("KeywordEvent", 3.1), ("TagEndEvent", 3.3),
    ]
    assert (events[1].start_s, events[2].duration_s) == (0.6, 0.7)
    assert all(e.stream == "mic" and e.model == "tiny" for e in events)
    assert events[0].keyword == "yes" and events[0].score > 0.9


@pytest.mark.parametrize("block", [1, 137, 4096, len(AUDIO)])
def test_events_do_not_depend_on_block_size(model, block):
    assert run_blocks(model, block) == run_blocks(model, 1600)


def test_fast_file_source_gives_the_same_events(model, tmp_path):
    from streamd.sources import open_source

    path = tmp_path / "a.wav"
    soundfile.write(path, AUDIO, SR, subtype="FLOAT")
    source = open_source(f"file:{path}", "mic", SR, fast=True)
    scheduler = Scheduler([source], [ModelSpec("tiny", model, 1600)], KEYWORDS, TAGS, 2.0)
    source.start()
    events = []
    while not scheduler.finished:
        events += scheduler.tick()
    source.stop()
    assert events + scheduler.flush() == run_blocks(model, 4096)


def test_lagging_realtime_stream_skips_to_fresh_audio_and_says_so(model):
    source = PushedSource()
    scheduler = Scheduler([source], [ModelSpec("tiny", model, 1600)], KEYWORDS, TAGS, max_lag_s=1.0)
    source.write(AUDIO[: 3 * SR])  # 3 s arrive at once: 2 s more than the bound
    events = scheduler.tick(max_hops=10_000)
    status = [e for e in events if isinstance(e, StatusEvent)]
    assert len(status) == 1 and status[0].state == "lag_skip"
    assert status[0].detail["skipped_samples"] == 3 * SR - 1600
    run = scheduler.runs[0]
    assert run.lag_skips == 1 and run.next_index == 3 * SR and run.hops == 1


def test_keyword_models_step_first_when_behind(model):
    source = PushedSource()
    tag_only = ModelSpec("tags", model, 1600)
    keyword = ModelSpec("kw", model, 1600)
    scheduler = Scheduler([source], [tag_only, keyword], {}, TAGS, 60.0)
    scheduler.runs[1].configure(KEYWORDS, {})  # only the second run has keyword triggers
    source.write(AUDIO[: 5 * 1600])
    order = []
    scheduler.on_hop = lambda run, end, scores: order.append(run.spec.name)
    scheduler.tick(max_hops=10_000)
    assert order == ["kw"] * 5 + ["tags"] * 5


def test_reconfigure_disable_ends_an_open_tag_and_thresholds_apply(model):
    source = PushedSource()
    scheduler = Scheduler([source], [ModelSpec("tiny", model, 1600)], KEYWORDS, TAGS, 60.0)
    source.write(AUDIO[: int(2.0 * SR)])  # inside the second burst: siren is on
    events = scheduler.tick(max_hops=10_000)
    assert isinstance(events[-1], TagStartEvent)
    ended = scheduler.configure(KEYWORDS, {"siren": (TAGS["siren"][0], False)})
    assert len(ended) == 1 and isinstance(ended[0], TagEndEvent) and ended[0].reason == "flush"
    scheduler.configure({"yes": (KeywordDefaults(0.999, (2, 3), 1.0), True)}, {})
    source.write(AUDIO[int(2.0 * SR):])
    later = scheduler.tick(max_hops=10_000)
    assert not [e for e in later if isinstance(e, (KeywordEvent, TagStartEvent))]


def test_two_streams_each_get_their_own_state(model):
    a, b = PushedSource("a"), PushedSource("b")
    scheduler = Scheduler([a, b], [ModelSpec("tiny", model, 1600)], KEYWORDS, {}, 60.0)
    a.write(AUDIO)
    b.write(np.zeros_like(AUDIO))
    events = scheduler.tick(max_hops=10_000)
    assert {e.stream for e in events} == {"a"} and len(events) == 3


@pytest.mark.parametrize("window, hops_at_100_200_ms, coarse_late_s", [
    ({"window_s": 0.6}, (6, 3), (-0.2, 0.2)),  # the same 0.6 s: the same time, give or take a 200 ms hop
    ({"window_hops": 6}, (6, 6), (0.3, 1.0)),  # 1.2 s at 200 ms: the 0.5 s burst is not enough, the next one is
    ({}, (3, 3), None),  # neither set: 3 hops
])
def test_a_tag_window_in_seconds_means_the_same_time_at_every_hop(model, window, hops_at_100_200_ms, coarse_late_s):
    """The same tag settings on one model run at 100 and 200 ms hops: window_s gives each run the hops that
    span it, so the tag turns on at the same time; window_hops counts each run's own hops."""
    tags = {"siren": (TagDefaults(0.5, 0.3, method="mean", min_duration_s=0.0, **window), True)}
    source = PushedSource()
    scheduler = Scheduler([source], [ModelSpec("fine", model, 1600), ModelSpec("coarse", model, 3200)], {}, tags, 60.0)
    assert tuple(run.smoothers[run.spec.model.info.label_names.index("siren")].cfg.window_hops
                 for run in scheduler.runs) == hops_at_100_200_ms
    source.write(np.concatenate([np.zeros(2 * SR, np.float32), AUDIO]))  # whole windows of quiet before the burst
    events = scheduler.tick(max_hops=10_000) + scheduler.flush()
    first_start_s = {e.model: e.position_samples / SR for e in reversed(events) if isinstance(e, TagStartEvent)}
    assert 2.5 < first_start_s["fine"] < 3.0, first_start_s  # the burst starts at 2.5 s
    if coarse_late_s:
        assert coarse_late_s[0] <= first_start_s["coarse"] - first_start_s["fine"] <= coarse_late_s[1], first_start_s
