"""The speech gate: a keyword hop counts only after speech; hop by hop equals the whole sequence; the
scheduler applies it per keyword and leaves models without a speech tag alone."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_decisions_fast import HOP, Label, scripted_run  # noqa: E402

from streamd.config import KeywordDefaults  # noqa: E402
from streamd.contract import KIND_KEYWORD, KIND_TAG  # noqa: E402
from streamd.gate import SpeechGate, gate_scores, window_hops  # noqa: E402


def test_window_hops_spans_the_seconds_asked_for():
    assert window_hops(1.28, 2560, 16000) == 8  # 160 ms hops
    assert window_hops(1.28, 5120, 16000) == 4
    assert window_hops(1.28, 30720, 16000) == 1  # a 1.92 s hop already holds the word
    assert window_hops(1.3, 2560, 16000) == 9
    assert window_hops(0.0, 2560, 16000) == 1


def test_gate_keeps_keyword_hops_within_the_window_after_speech():
    keyword = np.full(12, 0.9, np.float32)
    speech = np.zeros(12, np.float32)
    speech[3] = 0.6  # one hop of speech
    got = gate_scores(keyword, speech, gate=0.5, hops=4)
    assert got.dtype == np.float32
    assert got.tolist() == pytest.approx([0, 0, 0, 0.9, 0.9, 0.9, 0.9, 0, 0, 0, 0, 0])
    assert gate_scores(keyword, speech, gate=0.7, hops=4).tolist() == [0.0] * 12  # not speech enough
    assert gate_scores(keyword, speech, gate=0.0, hops=4) is keyword  # off


@pytest.mark.parametrize("seed", range(3))
def test_hop_by_hop_equals_the_whole_sequence(seed):
    rng = np.random.default_rng(seed)
    n = 600
    speech = rng.choice([0.0, 0.2, 0.5, 0.5 - 1e-7, 0.8, 0.95, 1.0, np.nan], size=n,
                        p=[0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.09, 0.01]).astype(np.float32)
    gates, hops = np.array([0.5, 0.8, 0.0, 0.95]), np.array([8, 3, 5, 1])
    keywords = rng.uniform(0, 1, (n, len(gates))).astype(np.float32)
    online = SpeechGate(gates, hops)
    opened = []
    for s in speech:
        online.push(s)
        opened.append(online.open())
    opened = np.array(opened)
    for k in range(len(gates)):
        want = gate_scores(keywords[:, k], speech, gates[k], int(hops[k]))
        np.testing.assert_array_equal(np.where(opened[:, k], keywords[:, k], 0.0), want)
    assert 0.2 < opened[:, 0].mean() < 0.95 and opened[:, 2].all()  # the gate did gate, and 0 is off


def gated_table(n: int, speech_at: list[int], keyword_at: list[int]) -> np.ndarray:
    table = np.zeros((n, 2), np.float32)
    table[speech_at, 1] = 0.9
    table[keyword_at, 0] = 0.95
    return table


LABELS = [Label("k", KIND_KEYWORD), Label("speech", KIND_TAG)]


def test_scheduler_fires_a_keyword_only_after_speech():
    # 100 ms hops: a 1.28 s window is 13 hops. Keyword hops at 20 (no speech ever before), 45 (speech
    # at 40) and 80 (speech 40 hops before).
    table = gated_table(100, [40], [20, 45, 80])
    gated = {"k": (KeywordDefaults(0.5, (1, 1), 0.0, speech_gate=0.5, speech_gate_s=1.28), True)}
    events = scripted_run(table, LABELS, gated, {})
    assert [(e[0], e[1]) for e in events] == [("KeywordEvent", 46 * HOP)]
    off = {"k": (KeywordDefaults(0.5, (1, 1), 0.0, speech_gate=0.0), True)}
    assert [e[1] for e in scripted_run(table, LABELS, off, {})] == [21 * HOP, 46 * HOP, 81 * HOP]


def test_a_model_without_a_speech_tag_is_not_gated(caplog):
    labels = [Label("k", KIND_KEYWORD), Label("dog", KIND_TAG)]
    table = gated_table(30, [], [10])
    events = scripted_run(table, labels, {"k": (KeywordDefaults(0.5, (1, 1), 0.0, speech_gate=0.5), True)}, {})
    assert [e[1] for e in events] == [11 * HOP]
    assert "has no 'speech' tag: its keywords are not speech-gated" in caplog.text


@pytest.mark.parametrize("seed", range(3))
def test_gating_only_busy_hops_gives_the_events_of_gating_every_hop(seed):
    # the scheduler reads the gate only on hops where some trigger could change; the reference gates the
    # whole sequence first (gate_scores) and feeds every hop to every trigger
    from test_decisions_fast import naive_run, nasty_scores, same

    rng = np.random.default_rng(seed)
    labels = [Label("k0", KIND_KEYWORD), Label("k1", KIND_KEYWORD), Label("speech", KIND_TAG)]
    keywords = {"k0": (KeywordDefaults(0.5, (1, 1), 0.3, speech_gate=0.5, speech_gate_s=0.5), True),
                "k1": (KeywordDefaults(0.7, (2, 3), 0.5, speech_gate=0.8, speech_gate_s=1.0), True)}
    n = 2000
    table = np.float32(np.stack([nasty_scores(rng, n, [0.5, 0.7, 0.8]) for _ in labels], axis=1))
    gated = table.copy()
    for j, (name, hops) in enumerate([("k0", 5), ("k1", 10)]):
        gated[:, j] = gate_scores(table[:, j], table[:, 2], keywords[name][0].speech_gate, hops)
    got = scripted_run(table, labels, keywords, {})
    assert same(got) == same(naive_run(gated, labels, keywords, {}))
    assert sum(1 for e in got if e[0] == "KeywordEvent") > 20
