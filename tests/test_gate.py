"""The speech gate: a keyword hop counts only after speech; the pause gate: only after a pause; hop by
hop equals the whole sequence; the scheduler applies both per keyword and leaves models without a
speech tag alone."""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_decisions_fast import HOP, Label, scripted_run  # noqa: E402

from streamd.config import KeywordDefaults  # noqa: E402
from streamd.contract import KIND_KEYWORD, KIND_TAG  # noqa: E402
from streamd.gate import (KeywordGate, SpeechGate, gate_scores, level_db, pause_scores, pause_window_hops,  # noqa: E402
                          window_hops)


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


def test_pause_window_hops_counts_hops_back_from_the_keyword_hop():
    assert pause_window_hops((0.32, 1.28), 2560, 16000) == (2, 8)  # 160 ms hops
    assert pause_window_hops((0.32, 1.28), 7680, 16000) == (1, 3)  # 480 ms: rounded outwards
    assert pause_window_hops((0.32, 1.28), 30720, 16000) == (1, 1)
    assert pause_window_hops((0.0, 0.0), 2560, 16000) == (0, 0)  # the keyword hop itself


def test_pause_gate_keeps_keyword_hops_only_after_a_pause():
    keyword = np.full(14, 0.9, np.float32)
    speech = np.full(14, 0.8, np.float32)  # running speech...
    speech[5] = 0.3  # ...with one pause
    got = pause_scores(keyword, speech, pause=0.5, near=2, far=4)
    assert got.dtype == np.float32
    # hops 0-3 reach back before the stream (counted as a pause); 7-9 see hop 5 two to four hops back
    assert got.tolist() == pytest.approx([0.9] * 4 + [0] * 3 + [0.9] * 3 + [0] * 4)
    assert pause_scores(keyword, speech, pause=0.2, near=2, far=4)[4:].tolist() == [0.0] * 10  # not quiet enough
    speech[5] = np.nan  # a broken score is not a pause
    assert pause_scores(keyword, speech, pause=0.5, near=2, far=4)[4:].tolist() == [0.0] * 10
    assert pause_scores(keyword, speech, pause=0.0, near=2, far=4) is keyword  # off


def test_a_quiet_stretch_is_a_pause_when_talk_goes_on_under_the_word():
    # a television talks all along (speech 0.8); the speaker's word is loud at hops 10-11 (-20 dB), the
    # television -35 dB elsewhere but for a dip at hop 3 alone
    keyword = np.full(14, 0.9, np.float32)
    speech = np.full(14, 0.8, np.float32)
    levels = np.full(14, -35.0)
    levels[[10, 11]] = -20.0
    levels[3] = -45.0
    got = pause_scores(keyword, speech, 0.5, near=2, far=6, levels_db=levels, drop_db=10, level_hops=2)
    # hops 0-5 reach back before the stream; at 10-12 the word (a hop of it, within the last two) is 15 dB
    # above what came before
    assert got.tolist() == pytest.approx([0.9] * 6 + [0] * 4 + [0.9] * 3 + [0])
    assert pause_scores(keyword, speech, 0.5, 2, 6, levels, drop_db=20, level_hops=2)[6:].tolist() == [0.0] * 8
    assert pause_scores(keyword, speech, 0.5, 2, 6, levels, drop_db=0, level_hops=2)[6:].tolist() == [0.0] * 8
    # one quiet hop is not a pause: hop 3 alone is 10 dB under -35, and at hops 8-9 the word is not louder
    levels[[10, 11]] = -35.0
    assert pause_scores(keyword, speech, 0.5, 2, 6, levels, drop_db=10, level_hops=2)[6:].tolist() == [0.0] * 8
    assert pause_scores(keyword, speech, 0.5, 2, 6, levels, drop_db=10, level_hops=1)[6:10].tolist() == \
        pytest.approx([0.9] * 4)  # (one hop suffices when asked)


def test_level_db_is_mean_power():
    assert level_db(np.full(2560, 0.1, np.float32)) == pytest.approx(-20.0, abs=1e-4)
    assert level_db(np.zeros(2560, np.float32)) == pytest.approx(-100.0)


def open_hop_by_hop(gate: SpeechGate, speech: np.ndarray, levels: np.ndarray | None = None) -> np.ndarray:
    """[n_hops, keywords]: which keywords the gate opened after each hop's speech score (and level), as the
    scheduler asks."""
    opened = []
    for k, score in enumerate(speech):
        gate.push(score, -100.0 if levels is None else levels[k])
        opened.append(gate.open())
    return np.array(opened)


@pytest.mark.parametrize("seed", range(3))
def test_hop_by_hop_equals_the_whole_sequence(seed):
    rng = np.random.default_rng(seed)
    n = 600
    speech = rng.choice([0.0, 0.2, 0.5, 0.5 - 1e-7, 0.8, 0.95, 1.0, np.nan], size=n,
                        p=[0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.09, 0.01]).astype(np.float32)
    gates, hops = np.array([0.5, 0.8, 0.0, 0.95]), np.array([8, 3, 5, 1])
    keywords = rng.uniform(0, 1, (n, len(gates))).astype(np.float32)
    opened = open_hop_by_hop(SpeechGate(gates, hops), speech)
    for k in range(len(gates)):
        want = gate_scores(keywords[:, k], speech, gates[k], int(hops[k]))
        np.testing.assert_array_equal(np.where(opened[:, k], keywords[:, k], 0.0), want)
    assert 0.2 < opened[:, 0].mean() < 0.95 and opened[:, 2].all()  # the gate did gate, and 0 is off


@pytest.mark.parametrize("seed", range(3))
def test_hop_by_hop_with_pause_gates_equals_the_whole_sequence(seed):
    rng = np.random.default_rng(seed)
    n = 600
    # runs of speech and pauses, as talk has them, and the odd NaN
    speech = np.repeat(rng.choice([0.1, 0.45, 0.5, 0.7, 0.95, np.nan], size=n // 6, p=[0.25, 0.1, 0.1, 0.2, 0.3, 0.05]),
                       6).astype(np.float32)
    gates, hops = np.array([0.5, 0.0, 0.8, 0.0]), np.array([8, 1, 3, 1])
    pauses, windows = np.array([0.5, 0.3, 0.0, 0.6]), np.array([[2, 8], [0, 3], [1, 1], [5, 12]])
    keywords = rng.uniform(0, 1, (n, len(gates))).astype(np.float32)
    drops = np.array([10.0, 0.0, 6.0, 3.0])
    levels = rng.choice([-60.0, -40.0, -35.0, -30.0, -20.0], size=n)
    online = SpeechGate(gates, hops, pauses, windows, drops, level_hops=2)
    opened = open_hop_by_hop(online, speech, levels)
    for k in range(len(gates)):
        want = gate_scores(keywords[:, k], speech, gates[k], int(hops[k]))
        want = pause_scores(want, speech, pauses[k], *windows[k], levels, drops[k], level_hops=2)
        np.testing.assert_array_equal(np.where(opened[:, k], keywords[:, k], 0.0), want)
        by_speech = pause_scores(keywords[:, k], speech, pauses[k], *windows[k])
        assert k not in (0, 3) or (want > by_speech).any()  # the level found pauses the speech score did not
    assert all(0.1 < opened[:, k].mean() < 0.9 for k in (0, 1))  # each pause gate did gate
    online.reset()
    online.push(0.95)
    assert online.open()[[1, 3]].all()  # a fresh stream: the window reaches back before it, a pause


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


def test_scheduler_fires_a_keyword_only_after_a_pause():
    # 100 ms hops: the pause is looked for 0.3-1.0 s back (hops 3-10 back). Speech from hop 0 to 60 with a
    # pause at 30; keyword hops at 25 (no pause in hops 15-22), 36 (the pause 6 hops back), 58 (28 back)
    # and 75 (speech ended at 60: hops 65-72 are quiet)
    table = gated_table(100, [h for h in range(61) if h != 30], [25, 36, 58, 75])
    paused = {"k": (KeywordDefaults(0.5, (1, 1), 0.0, speech_gate=0.0, pause_before=0.5,
                                    pause_before_s=(0.3, 1.0)), True)}
    assert [e[1] for e in scripted_run(table, LABELS, paused, {})] == [37 * HOP, 76 * HOP]
    off = {"k": (KeywordDefaults(0.5, (1, 1), 0.0, speech_gate=0.0, pause_before=0.0), True)}
    assert [e[1] for e in scripted_run(table, LABELS, off, {})] == [26 * HOP, 37 * HOP, 59 * HOP, 76 * HOP]


def test_scheduler_fires_once_for_a_word_whose_pause_leaves_the_window():
    # 100 ms hops, the pause looked for 3-10 hops back. A 1 s word (speech at hops 10-19), its keyword score
    # high from 18 to 35: open at 18 (the pause at 8-9), closed at 21-22 (hops 11-19 all speech), open again
    # from 23. The closed hops must not end the utterance: one event, not a second one after the refractory.
    table = gated_table(50, list(range(10, 20)), list(range(18, 36)))
    paused = {"k": (KeywordDefaults(0.5, (1, 1), 0.5, speech_gate=0.0, pause_before=0.5,
                                    pause_before_s=(0.3, 1.0)), True)}
    assert [e[1] for e in scripted_run(table, LABELS, paused, {})] == [19 * HOP]
    table[26, 0] = 0.1  # the word's scores really dip: a second utterance may fire once the gate is open
    assert [e[1] for e in scripted_run(table, LABELS, paused, {})] == [19 * HOP, 28 * HOP]


def test_scheduler_takes_a_quiet_stretch_under_talk_for_a_pause():
    # a television talks all along, 20 dB under the speaker; the keyword at hop 30 follows the speaker's
    # word at 28-29; the scheduler measures each hop's level from the audio it reads
    table = gated_table(40, list(range(40)), [30])
    amplitudes = np.full(40, 0.01)
    amplitudes[[28, 29, 30]] = 0.1
    paused = {"k": (KeywordDefaults(0.5, (1, 1), 0.0, speech_gate=0.0, pause_before=0.5, pause_before_s=(0.3, 1.0),
                                    pause_drop_db=10.0), True)}
    assert [e[1] for e in scripted_run(table, LABELS, paused, {}, amplitudes=amplitudes)] == [31 * HOP]
    by_speech = {"k": (dataclasses.replace(paused["k"][0], pause_drop_db=0.0), True)}
    assert scripted_run(table, LABELS, by_speech, {}, amplitudes=amplitudes) == []
    assert scripted_run(table, LABELS, paused, {}, amplitudes=np.full(40, 0.1)) == []  # one talker: no pause


def test_the_pause_gate_at_a_long_hop_is_reported(caplog, monkeypatch):
    import test_decisions_fast

    paused = {"k": (KeywordDefaults(0.5, (1, 1), 0.0, pause_before=0.5), True)}
    scripted_run(gated_table(5, [], []), LABELS, paused, {})  # 100 ms hops
    assert "pause gate" not in caplog.text
    monkeypatch.setattr(test_decisions_fast, "HOP", 7680)  # 480 ms
    scripted_run(gated_table(5, [], []), [Label("k", KIND_KEYWORD), Label("dog", KIND_TAG)], paused, {})
    assert "pause gate" not in caplog.text  # no speech tag, no pause gate to warn about
    scripted_run(gated_table(5, [], []), LABELS, paused, {})
    assert "m at a 480 ms hop: a pause before a keyword must fill a whole hop for the pause gate" in caplog.text


def test_a_model_without_a_speech_tag_is_not_gated(caplog):
    labels = [Label("k", KIND_KEYWORD), Label("dog", KIND_TAG)]
    table = gated_table(30, [], [10])
    events = scripted_run(table, labels, {"k": (KeywordDefaults(0.5, (1, 1), 0.0, speech_gate=0.5), True)}, {})
    assert [e[1] for e in events] == [11 * HOP]
    assert "has no 'speech' tag: its keywords are not speech-gated" in caplog.text


@pytest.mark.parametrize("seed", range(3))
def test_gating_only_busy_hops_gives_the_events_of_gating_every_hop(seed):
    # the scheduler reads the gate only on hops where some trigger could change; the reference gates the
    # whole sequence first (gate_scores, pause_scores: where they keep a score of 1) and feeds every hop to
    # every trigger
    from test_decisions_fast import naive_run, nasty_scores, same

    rng = np.random.default_rng(seed)
    labels = [Label("k0", KIND_KEYWORD), Label("k1", KIND_KEYWORD), Label("speech", KIND_TAG)]
    keywords = {"k0": (KeywordDefaults(0.5, (1, 1), 0.3, speech_gate=0.5, speech_gate_s=0.5, pause_before=0.0), True),
                "k1": (KeywordDefaults(0.7, (2, 3), 0.5, speech_gate=0.8, speech_gate_s=1.0, pause_before=0.7,
                                       pause_before_s=(0.2, 0.6)), True)}
    n = 2000
    table = np.float32(np.stack([nasty_scores(rng, n, [0.5, 0.7, 0.8]) for _ in labels], axis=1))
    opened = np.ones(table.shape, bool)
    for j, (name, hops) in enumerate([("k0", 5), ("k1", 10)]):
        opened[:, j] = gate_scores(np.ones(n), table[:, 2], keywords[name][0].speech_gate, hops) > 0
    opened[:, 1] &= pause_scores(np.ones(n), table[:, 2], 0.7, 2, 6) > 0  # k1's pause: 0.2-0.6 s = 2-6 hops back
    got = scripted_run(table, labels, keywords, {})
    assert same(got) == same(naive_run(table, labels, keywords, {}, opened=opened))
    assert sum(1 for e in got if e[0] == "KeywordEvent") > 20


def test_a_keywords_settings_become_one_gate_in_hops():
    gate = KeywordGate.of(KeywordDefaults(), 2560, 16000)  # config.yaml's gates at 160 ms
    assert gate == KeywordGate(speech=0.5, speech_hops=8, pause=0.5, near=2, far=8, drop_db=10.0, level_hops=2)
    assert KeywordGate.of(KeywordDefaults(), 7680, 16000).level_hops == 1  # 480 ms: one hop is 0.32 s or more
    assert SpeechGate.of([gate, KeywordGate.of(KeywordDefaults(pause_drop_db=0.0), 2560, 16000)]).uses_levels
    assert not SpeechGate.of([KeywordGate.of(KeywordDefaults(pause_drop_db=0.0), 2560, 16000)]).uses_levels
