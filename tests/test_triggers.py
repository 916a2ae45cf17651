"""KeywordTrigger over score sequences: threshold, N-of-M, refractory, re-arming, reset."""

import pytest

from streamd.triggers import Detection, KeywordTrigger, KeywordTriggerConfig

SR = 16000
HOP = 1600  # 0.1 s per hop


def run(cfg, scores, hop=HOP):
    trigger = KeywordTrigger("yes", cfg, SR)
    fired = []
    for i, score in enumerate(scores):
        d = trigger.update(score, (i + 1) * hop)
        if d is not None:
            fired.append((i, d.score))
    return fired


CASES = [
    # (name, config, scores, [(hop index that fires, reported score)])
    ("below threshold never fires", KeywordTriggerConfig(0.5), [0.1, 0.49, 0.3], []),
    ("at threshold fires", KeywordTriggerConfig(0.5), [0.1, 0.5, 0.2], [(1, 0.5)]),
    ("long utterance fires once", KeywordTriggerConfig(0.5, refractory_s=0.0), [0.9] * 30, [(0, 0.9)]),
    ("two utterances, refractory over", KeywordTriggerConfig(0.5, refractory_s=0.3),
     [0.9, 0.1, 0.1, 0.1, 0.8], [(0, 0.9), (4, 0.8)]),
    ("second utterance inside refractory is swallowed", KeywordTriggerConfig(0.5, refractory_s=1.0),
     [0.9, 0.1, 0.9, 0.1] + [0.1] * 7 + [0.7], [(0, 0.9), (11, 0.7)]),
    ("2 of 3 ignores a single spike", KeywordTriggerConfig(0.5, (2, 3), 0.0), [0.9, 0.1, 0.1, 0.9, 0.1, 0.1], []),
    ("2 of 3 fires on the second hit, reports the peak", KeywordTriggerConfig(0.5, (2, 3), 0.0),
     [0.9, 0.1, 0.6, 0.1, 0.1, 0.1], [(2, 0.9)]),
    ("3 of 3 needs consecutive hits", KeywordTriggerConfig(0.5, (3, 3), 0.0), [0.9, 0.9, 0.1, 0.9, 0.9, 0.9],
     [(5, 0.9)]),
    ("n-of-m stays true across a dip: no re-fire", KeywordTriggerConfig(0.5, (2, 4), 0.0),
     [0.9, 0.9, 0.1, 0.9, 0.1, 0.9, 0.9], [(1, 0.9)]),
    ("re-arms only once the condition is false", KeywordTriggerConfig(0.5, (2, 3), 0.0),
     [0.9, 0.9, 0.1, 0.1, 0.1, 0.9, 0.9], [(1, 0.9), (6, 0.9)]),
]


@pytest.mark.parametrize("name,cfg,scores,expected", CASES, ids=[c[0] for c in CASES])
def test_trigger_table(name, cfg, scores, expected):
    assert run(cfg, scores) == expected


def test_refractory_is_counted_in_samples_not_hops():
    cfg = KeywordTriggerConfig(0.5, refractory_s=0.5)  # 8000 samples
    scores = [0.9, 0.1, 0.9, 0.1, 0.9]
    assert [i for i, _ in run(cfg, scores, hop=2560)] == [0, 4]  # 0.16 s hops: hop 2 is at 0.32 s
    assert [i for i, _ in run(cfg, scores, hop=4000)] == [0, 2, 4]  # 0.25 s hops: hop 2 is 0.5 s after hop 0


def test_detection_carries_name_score_and_position():
    trigger = KeywordTrigger("stop", KeywordTriggerConfig(0.5), SR)
    assert trigger.update(0.2, 1600) is None
    assert trigger.update(0.75, 3200) == Detection("stop", 0.75, 3200)


def test_reset_forgets_history_and_refractory():
    trigger = KeywordTrigger("go", KeywordTriggerConfig(0.5, (2, 2), 10.0), SR)
    assert trigger.update(0.9, 1600) is None
    assert trigger.update(0.9, 3200) is not None
    trigger.reset()
    assert trigger.update(0.9, 4800) is None  # one hit after reset is not two
    assert trigger.update(0.9, 6400) == Detection("go", 0.9, 6400)


def test_bad_n_of_m_is_rejected():
    with pytest.raises(ValueError):
        KeywordTrigger("x", KeywordTriggerConfig(0.5, (3, 2)), SR)


def run_gated(cfg, scores, opened):
    trigger = KeywordTrigger("yes", cfg, SR)
    return [i for i, (score, o) in enumerate(zip(scores, opened)) if trigger.update(score, (i + 1) * HOP, o)]


def test_a_closed_hop_cannot_fire_and_does_not_re_arm():
    """A gate that closes inside one word's high scores must not split it into two events; a low score does."""
    cfg = KeywordTriggerConfig(0.5, refractory_s=0.5)
    plateau = [0.1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1]
    assert run_gated(cfg, plateau, [1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1]) == [2]  # the first open hop, once
    dipped = plateau[:4] + [0.1] + plateau[5:]  # the word really ended at hop 4: a second one may fire
    assert run_gated(cfg, dipped, [1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1]) == [2, 7]  # after the 0.5 s refractory
    assert run_gated(cfg, plateau, [0] * 11) == []
    two_of_three = KeywordTriggerConfig(0.5, (2, 3), 0.0)
    assert run_gated(two_of_three, [0.9] * 5, [1, 0, 0, 1, 1]) == [4]  # two open hits among the last 3
