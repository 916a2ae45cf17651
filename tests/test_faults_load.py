"""Load: inference slowed far below real time for a while. The scheduler must shed load as designed
(skip to fresh audio, reset the model state, publish a lag_skip status), capture must keep its pace
(the ring's end advances with the wall clock throughout), and detection must come back when the
load ends.

Slowing comes from a wrapper around the loaded model whose step sleeps during a wall-clock window:
deterministic, unlike a CPU hog on a shared 2-core machine. The scheduler, the real-time file source
(its own thread) and the triggers are the real ones.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile

from streamd.config import KeywordDefaults
from streamd.events import KeywordEvent, StatusEvent
from streamd.model import load_model
from streamd.sources import open_source
from tiny_model import SAMPLE_RATE_HZ, build, tone_bursts

scheduler = pytest.importorskip("streamd.scheduler")

HOP_SAMPLES = 1600  # 100 ms
AUDIO_S = 12.0
BURSTS_S = [(0.5 + i, 1.1 + i) for i in range(11)]  # one 0.6 s burst per second
LOAD_WINDOW_S = (2.5, 6.0)  # wall-clock seconds after start during which each step takes SLOW_STEP_S
SLOW_STEP_S = 0.35  # 3.5x slower than real time at a 100 ms hop
MAX_LAG_S = 1.0


class SlowedModel:
    """A loaded model whose step sleeps while `slow()` says so; everything else passes through."""

    def __init__(self, model, slow):
        self._model, self._slow = model, slow
        self.info, self.path = model.info, model.path

    name = property(lambda self: self._model.name)
    state_bytes = property(lambda self: self._model.state_bytes)

    def new_state(self):
        return self._model.new_state()

    def step(self, audio, state):
        if self._slow():
            time.sleep(SLOW_STEP_S)
        return self._model.step(audio, state)


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    return build(tmp_path_factory.mktemp("model") / "tiny.onnx")


def test_slow_inference_skips_resets_reports_and_recovers(tmp_path, tiny_model_path):
    wav = tmp_path / "bursts.wav"
    soundfile.write(wav, tone_bursts(BURSTS_S, AUDIO_S), SAMPLE_RATE_HZ, subtype="PCM_16")
    source = open_source(f"file:{wav}", "file", SAMPLE_RATE_HZ, fast=False, ring_seconds=4.0)
    t0 = time.monotonic()
    slow = lambda: LOAD_WINDOW_S[0] <= time.monotonic() - t0 < LOAD_WINDOW_S[1]  # noqa: E731
    model = SlowedModel(load_model(tiny_model_path), slow)
    spec = scheduler.ModelSpec("tiny", model, HOP_SAMPLES)
    keywords = {"yes": (KeywordDefaults(threshold=0.5, n_of_m=(1, 1), refractory_s=0.5), True)}
    sched = scheduler.Scheduler([source], [spec], keywords, {}, max_lag_s=MAX_LAG_S)

    ring_trace = []  # (wall s, ring end index), sampled by a thread that only reads
    stop = threading.Event()

    def watch_ring():
        while not stop.is_set():
            ring_trace.append((time.monotonic() - t0, source.ring.end_index))
            stop.wait(0.05)

    watcher = threading.Thread(target=watch_ring)
    events = []
    source.start()
    watcher.start()
    try:
        deadline = t0 + AUDIO_S + 15
        while not sched.finished and time.monotonic() < deadline:
            source.wait_for_data(0.05)
            events += [(time.monotonic() - t0, e) for e in sched.tick()]
        assert sched.finished, "the scheduler did not reach the end of the file"
    finally:
        stop.set()
        watcher.join()
        source.stop()

    # capture kept real-time pace while inference was slow: no gap in the ring's progress
    walls = np.array([w for w, _ in ring_trace])
    ends = np.array([e for _, e in ring_trace]) / SAMPLE_RATE_HZ
    in_load = (walls > LOAD_WINDOW_S[0] + 0.3) & (walls < LOAD_WINDOW_S[1]) & (ends < AUDIO_S - 0.2)
    assert in_load.sum() > 20
    pace = np.polyfit(walls[in_load], ends[in_load], 1)[0]
    assert 0.9 < pace < 1.1, f"capture ran at {pace:.2f}x real time while inference was slowed"

    skips = [(w, e) for w, e in events if isinstance(e, StatusEvent) and e.state == "lag_skip"]
    assert skips, "no lag_skip status event while 3.5x behind real time"
    assert all(LOAD_WINDOW_S[0] < w < LOAD_WINDOW_S[1] + SLOW_STEP_S + 0.2 for w, _ in skips), \
        f"lag_skip outside the load window: {[round(w, 2) for w, _ in skips]}"
    assert all(e.detail["skipped_samples"] > 0 for _, e in skips)

    # after the load: every burst that starts once the scheduler has caught up is detected once
    caught_up_s = LOAD_WINDOW_S[1] + 1.0
    keywords_after = [e for w, e in events if isinstance(e, KeywordEvent) and e.position_samples / SAMPLE_RATE_HZ > caught_up_s]
    expected_after = [b for b in BURSTS_S if b[0] > caught_up_s]
    assert len(keywords_after) == len(expected_after), (
        f"{len(keywords_after)} keyword events after the load, expected {len(expected_after)}")
    keywords_before = [e for w, e in events if isinstance(e, KeywordEvent) and w < LOAD_WINDOW_S[0]]
    assert len(keywords_before) >= 1, "no detection before the load either: the setup is wrong"


def test_nan_audio_does_not_kill_detection(tmp_path, tiny_model_path):
    """A burst of NaN samples (a broken driver, a bad file) must not poison the model state for ever."""
    audio = tone_bursts([(1.0, 1.6), (4.0, 4.6), (6.0, 6.6)], 8.0)
    audio[int(2.0 * SAMPLE_RATE_HZ):int(2.5 * SAMPLE_RATE_HZ)] = np.nan
    wav = tmp_path / "nan.wav"
    soundfile.write(wav, audio, SAMPLE_RATE_HZ, subtype="FLOAT")
    source = open_source(f"file:{wav}", "file", SAMPLE_RATE_HZ, fast=True, ring_seconds=4.0)
    spec = scheduler.ModelSpec("tiny", load_model(tiny_model_path), HOP_SAMPLES)
    keywords = {"yes": (KeywordDefaults(threshold=0.5, n_of_m=(1, 1), refractory_s=0.5), True)}
    sched = scheduler.Scheduler([source], [spec], keywords, {}, max_lag_s=MAX_LAG_S, scores_interval_s=0.1)
    source.start()
    events = []
    try:
        while not sched.finished:
            events += sched.tick()
    finally:
        source.stop()
    from streamd.events import ScoresEvent, encode

    for e in events:
        encode(e, 0, 0.0)  # strict JSON: a NaN score would raise here, in the service's main loop
    fired = [e.position_samples / SAMPLE_RATE_HZ for e in events if isinstance(e, KeywordEvent)]
    assert len([t for t in fired if t > 3.0]) == 2, f"keyword events at {fired}: detection died after the NaN"
    assert all(np.isfinite(list(e.scores.values())).all() for e in events if isinstance(e, ScoresEvent))


def test_nan_audio_does_not_poison_a_streaming_cache(tmp_path):
    """A SAT-style model carries its token cache in the state, layer on layer: 100 NaN samples (6 ms)
    leave every score NaN for about n_layers x cache_columns hops (here 3 x 12 = 36 hops, 5.8 s: a
    stream that silently stops detecting, and a scores/tag event that cannot be encoded). Sanitised
    input never gives a NaN score."""
    from export.families import build_model
    from export.labels import DEFAULT_LABELS
    from export.onnx_export import export_onnx, model_info

    sat = build_model("sat", DEFAULT_LABELS, "tiny").eval()
    path = export_onnx(sat, tmp_path / "sat.onnx", model_info(sat))
    model = load_model(path)
    hop = model.info.hop_samples[0]
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(hop * 40)).astype(np.float32)
    audio[hop * 5: hop * 5 + 100] = np.nan
    wav = tmp_path / "nan.wav"
    soundfile.write(wav, audio, SAMPLE_RATE_HZ, subtype="FLOAT")
    source = open_source(f"file:{wav}", "file", SAMPLE_RATE_HZ, fast=True, ring_seconds=4.0)
    spec = scheduler.ModelSpec("sat", model, hop)
    finite = []
    sched = scheduler.Scheduler([source], [spec], {}, {}, max_lag_s=MAX_LAG_S,
                                on_hop=lambda run, end, scores: finite.append(bool(np.isfinite(scores).all())))
    source.start()
    try:
        while not sched.finished:
            sched.tick()
    finally:
        source.stop()
    assert len(finite) == 40 and all(finite[:5])
    assert all(finite), f"{sum(not f for f in finite)} of 40 hops gave NaN scores after 100 NaN samples"
