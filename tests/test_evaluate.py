"""The evaluation command: metric functions on hand-made numbers, and one run of the CLI on tiny data."""

from __future__ import annotations

import argparse
import json
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from export import evaluate as ev
from export import metrics
from export.evaluation.alarms import (ALARM_CLIPS_PER_KIND, ALARM_LEAD_S, ALARM_SECONDS, ALARM_VARIANT_CLIPS,
                                      ALARM_VARIANTS, alarm_scenes, alarm_variant_scenes, beep_groups, whole_groups)
from export.evaluation.clips import clip_audio, in_group, keyword_positives, select_clips, tag_source, tag_truth
from export.evaluation.context import Context, NegativeStream
from export.evaluation.decisions import (DET_THRESHOLDS, TAG_WINDOW_S, count_detections, det_table, detections,
                                         moving_mean, tag_segments)
from export.evaluation.keywords import PAD_S, false_accepts_where, is_silence_by_energy
from export.evaluation.streaming import BACKGROUND_RMS, EVENT_RMS, HUM_HZ, Scored, Scorer, with_noise
from export.evaluation.tags import build_mixture
from streamd.triggers import KeywordTrigger, KeywordTriggerConfig

SR = 16000
HOP = 2560  # 160 ms: the tiny SAT model's column


# ---------------------------------------------------------------------------------------------
# Metrics


def test_accuracy_and_confusion_matrix():
    truth, pred = [0, 1, 2, 2], [0, 2, 2, 1]
    assert metrics.accuracy(truth, pred) == 0.5
    assert metrics.confusion_matrix(truth, pred, 3).tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]


def test_kws_prediction_collapses_low_scores_to_no_keyword_and_finds_best_threshold():
    max_scores = np.array([[0.9, 0.1], [0.4, 0.3], [0.2, 0.7], [0.3, 0.35]])
    assert metrics.kws_predict(max_scores, 0.5).tolist() == [0, 2, 1, 2]
    assert metrics.kws_predict(max_scores, 0.3).tolist() == [0, 0, 1, 1]
    truth = np.array([0, 0, 1, 2])  # at 0.5 the second clip is missed; 0.36..0.4 gets all four
    assert metrics.accuracy(truth, metrics.kws_predict(max_scores, 0.5)) == 0.75
    assert metrics.best_threshold(max_scores, truth) == (0.36, 1.0)


def test_average_precision_matches_hand_computed_values():
    # positives at ranks 1, 3, 5: AP = (1/1 + 2/3 + 3/5) / 3 = 34/45
    assert metrics.average_precision([1, 0, 1, 0, 1], [0.9, 0.8, 0.7, 0.6, 0.2]) == pytest.approx(34 / 45)
    # a tie between a positive and a negative is one threshold: precision 1/2 at recall 1
    assert metrics.average_precision([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert metrics.average_precision([0, 1, 0], [0.9, 0.1, 0.5]) == pytest.approx(1 / 3)
    assert np.isnan(metrics.average_precision([0, 0], [0.1, 0.2]))


def _spikes(n_hops: int, high: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    scores = np.full(n_hops, 0.1, np.float32)
    for i, s in high.items():
        scores[i] = s
    return scores, HOP * np.arange(1, n_hops + 1)


def _brute_force(scores, ends, cfg) -> int:
    trigger = KeywordTrigger("k", cfg, SR)
    return sum(trigger.update(float(s), int(e)) is not None for s, e in zip(scores, ends))


def test_false_accepts_are_counted_with_the_service_trigger():
    # 0.16 s hops, refractory 1 s: 100 fires; 104 is 0.64 s later (refractory); 300 fires;
    # 500..520 is one long high run (fires once); 900 fires
    high = {100: 0.9, 104: 0.9, 300: 0.8, 900: 0.95} | {i: 0.9 for i in range(500, 521)}
    scores, ends = _spikes(1000, high)
    cfg = KeywordTriggerConfig(threshold=0.5, n_of_m=(1, 1), refractory_s=1.0)
    assert count_detections(scores, ends, "k", cfg, SR, HOP) == 4
    assert count_detections(scores, ends, "k", KeywordTriggerConfig(0.85, (1, 1), 1.0), SR, HOP) == 3
    # 2 of 3: isolated spikes never fire, the long run does once
    assert count_detections(scores, ends, "k", KeywordTriggerConfig(0.5, (2, 3), 1.0), SR, HOP) == 1


def test_a_gate_closing_inside_one_word_gives_one_detection_as_in_the_service():
    # 500..520 is one word's long high run; the gates close 503-507 (a pause gate's window moving past the
    # pause before the word): the trigger must not re-arm there and fire again after its refractory
    scores, ends = _spikes(1000, {i: 0.9 for i in range(500, 521)})
    opened = np.ones(1000, bool)
    opened[503:508] = False
    cfg = KeywordTriggerConfig(threshold=0.5, n_of_m=(1, 1), refractory_s=0.5)
    assert detections(scores, ends, "k", cfg, SR, HOP, opened) == [501 * HOP]
    assert detections(np.where(opened, scores, 0), ends, "k", cfg, SR, HOP) == [501 * HOP, 509 * HOP]  # the old way
    opened[495:502] = False
    assert detections(scores, ends, "k", cfg, SR, HOP, opened) == [503 * HOP]  # the first open hop


def test_false_accepts_are_placed_in_the_clip_they_fire_in():
    high = {100: 0.9, 104: 0.9, 300: 0.8, 900: 0.95} | {i: 0.9 for i in range(500, 521)}
    scores, ends = _spikes(1000, high)
    # three clips laid end to end: 200 hops of speech, 500 of a dog, then noise
    stream = NegativeStream(Scored(scores[:, None], ends), hours=1000 * HOP / SR / 3600,
                               names=["speech/a.flac", "tags/esc50/dog/b.flac", "noise/c.flac"],
                               starts=np.array([0, 200 * HOP, 700 * HOP], np.int64))
    cfg = KeywordTriggerConfig(threshold=0.5, n_of_m=(1, 1), refractory_s=1.0)
    assert detections(scores, ends, "k", cfg, SR, HOP) == [101 * HOP, 301 * HOP, 501 * HOP, 901 * HOP]
    where = false_accepts_where(stream, stream.scored, 0, "k", cfg, SR, HOP)
    assert where["by_source"] == {"tags/esc50": 2, "speech": 1, "noise": 1}
    assert where["places"] == [{"clip": "speech/a.flac", "at_s": round(101 * HOP / SR, 2), "pass": 0},
                               {"clip": "tags/esc50/dog/b.flac", "at_s": round(101 * HOP / SR, 2), "pass": 0},
                               {"clip": "tags/esc50/dog/b.flac", "at_s": round(301 * HOP / SR, 2), "pass": 0},
                               {"clip": "noise/c.flac", "at_s": round(201 * HOP / SR, 2), "pass": 0}]
    # the same 1000 hops as two passes of two clips (300 + 200 hops each): the second pass names them again
    twice = NegativeStream(stream.scored, stream.hours, names=["speech/a.flac", "noise/c.flac"],
                           starts=np.array([0, 300 * HOP, 500 * HOP, 800 * HOP], np.int64), passes=2)
    places = false_accepts_where(twice, twice.scored, 0, "k", cfg, SR, HOP)["places"]
    assert places == [{"clip": "speech/a.flac", "at_s": round(101 * HOP / SR, 2), "pass": 0},
                      {"clip": "noise/c.flac", "at_s": round(1 * HOP / SR, 2), "pass": 0},
                      {"clip": "speech/a.flac", "at_s": round(1 * HOP / SR, 2), "pass": 1},
                      {"clip": "noise/c.flac", "at_s": round(101 * HOP / SR, 2), "pass": 1}]


@pytest.mark.parametrize("n_of_m,refractory_s", [((1, 1), 1.0), ((2, 3), 0.5), ((3, 5), 2.0), ((1, 4), 0.0)])
def test_skipping_quiet_hops_counts_exactly_like_feeding_every_hop(n_of_m, refractory_s):
    rng = np.random.default_rng(7)
    scores = (rng.random(3000) ** 6).astype(np.float32)  # mostly low, with bursts
    ends = HOP * np.arange(1, len(scores) + 1)
    for threshold in (0.3, 0.6, 0.9):
        cfg = KeywordTriggerConfig(threshold, n_of_m, refractory_s)
        assert count_detections(scores, ends, "k", cfg, SR, HOP) == _brute_force(scores, ends, cfg)


class GateInfo:
    def __init__(self, kinds: dict[str, str]):
        self.kinds = kinds
        self.label_names = list(kinds)

    def names_of_kind(self, kind: str) -> list[str]:
        return [n for n, k in self.kinds.items() if k == kind]


def gate_context(kinds: dict[str, str], gate: float, pause: float = 0.0) -> Context:
    from types import SimpleNamespace

    model = SimpleNamespace(info=GateInfo(kinds))
    scorer = SimpleNamespace(model=model, hop_samples=HOP, sample_rate_hz=SR)
    args = SimpleNamespace(speech_gate=gate, speech_gate_s=0.48, pause_before=pause, pause_before_s=(2 * HOP / SR, 0.48),
                           pause_drop_db=10.0)
    return Context(scorer, [], {}, args)


def test_keyword_scores_are_gated_by_speech_as_in_the_service():
    # hops: speech at 2; keyword "k" high at 1 (before it), 3 and 4 (within 0.48 s = 3 hops), 6 (after)
    scores = np.zeros((8, 3), np.float32)
    scores[2, 1] = 0.9
    scores[[1, 3, 4, 6], 0] = 0.8
    scores[:, 2] = 0.7  # a tag: never gated
    scored = Scored(scores, (np.arange(8) + 1) * HOP)
    kinds = {"k": "keyword", "speech": "tag", "dog": "tag"}
    gated = gate_context(kinds, 0.5).gated(scored).counted()
    assert gated[:, 0].tolist() == pytest.approx([0, 0, 0, 0.8, 0.8, 0, 0, 0])
    np.testing.assert_array_equal(gated[:, 1:], scores[:, 1:])
    assert gate_context(kinds, 0.0).gated(scored) is scored  # --speech-gate 0: as before
    no_speech = {"k": "keyword", "talk": "tag", "dog": "tag"}
    assert gate_context(no_speech, 0.5).gated(scored) is scored  # nothing to gate by, as in the service


def test_keyword_scores_need_a_pause_before_them_as_in_the_service():
    # the pause is looked for 2-3 hops back (0.48 s = 3 hops); speech everywhere but hop 4
    scores = np.zeros((10, 2), np.float32)
    scores[:, 1] = 0.9
    scores[4, 1] = 0.2
    scores[:, 0] = 0.8
    scored = Scored(scores, (np.arange(10) + 1) * HOP, np.full(10, -30.0))
    kinds = {"k": "keyword", "speech": "tag"}
    gated = gate_context(kinds, 0.5, pause=0.5).gated(scored).counted()
    # hops 0-2 reach back before the stream (a pause); 6 and 7 see hop 4; hop 4 itself is not speech
    assert gated[:, 0].tolist() == pytest.approx([0.8, 0.8, 0.8, 0, 0, 0, 0.8, 0.8, 0, 0])
    # talk 12 dB under the word at hops 4-5 (the level hops: 0.32 s = 2): a pause by level at 7 and 8
    quiet = Scored(scores, scored.end_samples, np.array([-30.0] * 4 + [-42.0] * 2 + [-30.0] * 4))
    assert gate_context(kinds, 0.5, pause=0.5).gated(quiet).counted()[:, 0].tolist() == \
        pytest.approx([0.8, 0.8, 0.8, 0, 0, 0, 0.8, 0.8, 0.8, 0])
    assert gate_context(kinds, 0.0, pause=0.5).gated(scored).counted()[:, 0].tolist() == gated[:, 0].tolist()
    assert gate_context(kinds, 0.0, pause=0.0).gated(scored) is scored


def test_det_table_gives_frr_and_fa_per_hour_per_threshold_and_the_operating_point():
    n = 40
    pos_hi = Scored(np.array([[0.1]] * 10 + [[0.9]] + [[0.1]] * 5, np.float32), HOP * np.arange(1, 17))
    pos_lo = Scored(np.array([[0.3]] * 16, np.float32), HOP * np.arange(1, 17))
    neg_scores, ends = _spikes(n, {5: 0.6, 30: 0.6})
    negative = Scored(neg_scores[:, None], ends)
    rows = det_table([pos_hi, pos_lo], negative, 0, "k", negative_hours=0.5, sample_rate_hz=SR, hop_samples=HOP,
                        thresholds=(0.2, 0.5, 0.8), n_of_m=(1, 1), refractory_s=1.0)
    got = [(r["threshold"], r["frr_pct"], r["false_accepts"], r["fa_per_h"]) for r in rows]
    # at 0.2 the low positive is detected; the negative's 0.1 floor stays below every threshold
    assert got == [(0.2, 0.0, 2, 4.0), (0.5, 50.0, 2, 4.0), (0.8, 50.0, 0, 0.0)]
    assert [r["negative_hops_above_pct"] for r in rows] == [5.0, 5.0, 0.0]  # 2 of 40 hops
    assert metrics.operating_point(rows, 0.5)["threshold"] == 0.8
    assert metrics.operating_point(rows, 5.0)["threshold"] == 0.2
    assert metrics.operating_point(rows[:2], 0.5) is None
    assert [r["frr_ci95_pct"] for r in rows] == [[0.0, 65.8], [9.5, 90.5], [9.5, 90.5]]  # Wilson, 0 and 1 of 2


def test_wilson_interval_bounds_a_proportion_even_at_none_and_all():
    assert metrics.wilson_interval(0, 11) == (0.0, pytest.approx(0.2588, abs=1e-4))  # "0 of 11 missed" allows 26 %
    assert metrics.wilson_interval(11, 11) == (pytest.approx(0.7412, abs=1e-4), 1.0)
    lo, hi = metrics.wilson_interval(407, 435)  # the default's 93.6 % of the validation keywords
    assert (lo, hi) == (pytest.approx(0.9085, abs=1e-4), pytest.approx(0.9551, abs=1e-4)) and lo < 407 / 435 < hi
    assert metrics.wilson_interval(3, 10) == pytest.approx(tuple(1 - v for v in reversed(metrics.wilson_interval(7, 10))))
    narrow, wide = metrics.wilson_interval(500, 1000), metrics.wilson_interval(5, 10)
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 5  # 100 times the clips: a tenth of the width
    assert metrics.wilson_interval(0, 0) == (0.0, 1.0)


def test_event_matching_with_collar_and_boundary_errors():
    truth = [metrics.Event("dog", 1.0, 2.0), metrics.Event("cat", 5.0, 6.0)]
    predicted = [metrics.Event("dog", 1.3, 2.4), metrics.Event("cat", 5.8, 6.5), metrics.Event("dog", 8.0, 9.0),
                 metrics.Event("cat", 1.0, 2.0)]
    assert metrics.match_events(truth, predicted, 0.5) == (1, 3, 1)
    assert metrics.match_events(truth, predicted, 1.0) == (2, 2, 0)
    assert metrics.f1_score(1, 3, 1) == {"f1": 0.3333, "precision": 0.25, "recall": 0.5, "tp": 1, "fp": 3, "fn": 1}
    b = metrics.boundary_errors(truth, predicted)
    assert b["overlapped_fraction"] == 1.0
    assert b["onset_error_median_s"] == pytest.approx(0.55)  # errors 0.3 and 0.8
    assert b["offset_error_median_s"] == pytest.approx(0.45)  # errors 0.4 and 0.5
    assert b["onset_abs_error_mean_s"] == pytest.approx(0.55)


def test_mixture_places_the_active_part_of_each_sound_at_its_truth_times():
    t = np.arange(SR) / SR
    clip = np.where((t >= 0.5) & (t < 0.75), 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0).astype(np.float32)
    audio, truth = build_mixture([("a", clip), ("b", clip)], np.zeros(0), SR, seed=3)
    assert [e.label for e in truth] == ["a", "b"]
    for e in truth:
        assert e.offset_s - e.onset_s == pytest.approx(0.25, abs=0.026)
        inside = audio[round(e.onset_s * SR) : round(e.offset_s * SR)]
        before = audio[round((e.onset_s - 1.0) * SR) : round((e.onset_s - 0.1) * SR)]
        assert np.sqrt(np.mean(inside ** 2)) == pytest.approx(EVENT_RMS, rel=0.1)
        assert np.sqrt(np.mean(before ** 2)) == pytest.approx(BACKGROUND_RMS, rel=0.2)
    assert truth[1].onset_s - truth[0].offset_s >= 2.0


def test_energy_rule_tells_stationary_noise_from_a_word():
    rng = np.random.default_rng(0)
    noise = (0.05 * rng.standard_normal(SR)).astype(np.float32)
    word = noise * 0.01
    word[4000:10000] += 0.3 * np.sin(2 * np.pi * 300 * np.arange(6000) / SR)
    assert is_silence_by_energy(noise)
    assert not is_silence_by_energy(word)


# ---------------------------------------------------------------------------------------------
# The command on tiny data


def _tone(seconds, hz, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t) * (np.sin(2 * np.pi * 2 * t) > 0) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


DATA = [  # path, labels, speaker, audio
    ("kws/gsc_v2/yes/aa11_nohash_0.wav", "yes", "aa11", lambda: _tone(1, 500)),
    ("kws/gsc_v2/no/bb22_nohash_0.wav", "no", "bb22", lambda: _tone(1, 900)),
    ("kws/gsc_v2/_silence_/0.wav", "_silence_", "", lambda: _tone(1, 0, seed=1)),
    ("kws/gsc_v2/_unknown_/bed_cc33_nohash_0.wav", "_unknown_;word=bed", "cc33", lambda: _tone(1, 700)),
    ("kws/precise/computer/c1.wav", "computer", "", lambda: _tone(1.5, 400)),
    ("kws/precise/not_wake_word/n1.wav", "not_wake_word;text=hello there", "", lambda: _tone(1, 1200)),
    ("speech/s1.wav", "speech;intent=coffee", "", lambda: _tone(2, 300)),
    ("noise/white.wav", "noise;white", "", lambda: _tone(3, 0, seed=2)),
    ("tags/esc50/dog/4-100-A-18.wav", "dog", "", lambda: _tone(2, 2000)),
    ("tags/esc50/cat/4-101-A-5.wav", "cat", "", lambda: _tone(2, 3000)),
    ("tags/urbansound8k/fold1/dog_bark/100-3-0-0.wav", "dog_bark", "", lambda: _tone(1.5, 2500)),
]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    lines = ["path,labels,speaker,duration_s"]
    for path, labels, speaker, make in DATA:
        audio = make()
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / path, audio, SR, subtype="PCM_16")
        lines.append(f"{path},{labels},{speaker},{len(audio) / SR:.3f}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    import torch

    from export.families.sat import SATConfig, SATModel
    from export.onnx_export import export_onnx, model_info
    from streamd.contract import Label

    labels = tuple(Label(n, "keyword") for n in ("yes", "no", "computer")) + tuple(Label(n, "tag") for n in ("dog", "speech"))
    cfg = SATConfig(d_model=16, n_layers=1, n_heads=2, patch_mels=32, cache_columns=3, hop_columns=(1, 2))
    folder = tmp_path_factory.mktemp("models")
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = SATModel(labels, cfg).eval()
        paths.append(export_onnx(model, folder / f"sat{seed}.onnx", model_info(model, licence="test")))
    return paths


@pytest.fixture(autouse=True)
def audio_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMD_CACHE", str(tmp_path / "cache"))


def test_val_and_train_splits_keep_the_training_rule_and_cut_noise_in_time(tiny_data):
    from export.data.splits import is_time_split, split_of

    every, groups = select_clips(tiny_data, "all")
    val, _ = select_clips(tiny_data, "val")
    assert len(every) == len(DATA)
    assert val == [c for c in every if is_time_split(c) or split_of(c) == "val"]
    noise = next(c for c in val if groups[c.path] == "noise")
    assert len(clip_audio(noise, SR, "val")) == 3 * SR - int(0.8 * 3 * SR)
    assert len(clip_audio(noise, SR, "all")) == 3 * SR
    train, _ = select_clips(tiny_data, "train")  # the complement, noise recordings on both sides
    assert {c.path for c in train} | {c.path for c in val} == {c.path for c in every}
    assert {c.path for c in train} & {c.path for c in val} == {c.path for c in every if is_time_split(c)}
    assert len(clip_audio(noise, SR, "train")) == int(0.8 * 3 * SR)
    assert in_group(noise, groups, "noise") and not in_group(noise, groups, "no")


def test_gain_scales_every_clip_read_and_clips_at_full_scale(tiny_data, tiny_models):
    from streamd.model import load_model

    clips, _ = select_clips(tiny_data, "all")
    clip = next(c for c in clips if c.label == "yes")
    model = load_model(tiny_models[0])
    plain = Scorer(model, 2560).audio(clip)
    quiet = Scorer(model, 2560, gain_db=-20).audio(clip)
    loud = Scorer(model, 2560, gain_db=20).audio(clip)
    assert quiet.dtype == np.float32 and np.allclose(quiet, plain / 10, atol=1e-6)
    assert np.abs(loud).max() == pytest.approx(1.0) and np.allclose(loud[np.abs(plain) < 0.09], 10 * plain[np.abs(plain) < 0.09], atol=1e-5)


def test_evaluate_hears_every_clip_through_the_room_and_says_so(tiny_data, tiny_models, tmp_path):
    from export.data.rooms import Rooms
    from streamd.model import load_model

    clips, _ = select_clips(tiny_data, "all")
    clip = next(c for c in clips if c.label == "yes")
    model = load_model(tiny_models[0])
    rooms = Rooms(0.6, (1.0, 4.0), SR)
    dry = Scorer(model, 2560).audio(clip)
    wet = Scorer(model, 2560, room=rooms).audio(clip)
    assert np.array_equal(wet, rooms.play(dry, str(clip.path))) and not np.allclose(wet, dry, atol=1e-3)

    out = tmp_path / "room"
    assert ev.main([str(tiny_models[0]), "--data", str(tiny_data), "--split", "all", "--hop-ms", "160", "--out",
                    str(out), "--tasks", "kws", "--quiet", "--phases", "1", "--room-rt60-s", "0.6"]) == 0
    result = json.loads((out / f"{tiny_models[0].stem}.json").read_text())
    assert result["room"]["rt60_s"] == 0.6 and result["room"]["rooms"] == 16
    assert 1.0 <= result["room"]["distance_m"][0] <= result["room"]["distance_m"][1] <= 4.0
    tail = tmp_path / "tail"  # training's kind of room at the same times and ratios
    assert ev.main([str(tiny_models[0]), "--data", str(tiny_data), "--split", "all", "--hop-ms", "160", "--out",
                    str(tail), "--tasks", "kws", "--quiet", "--phases", "1", "--room-rt60-s", "0.6",
                    "--room-model", "tail"]) == 0
    tail_room = json.loads((tail / f"{tiny_models[0].stem}.json").read_text())["room"]
    assert result["room"]["model"] == "shoebox" and tail_room["model"] == "tail"
    assert tail_room["direct_to_reverberant_db"] == pytest.approx(result["room"]["direct_to_reverberant_db"], abs=0.1)
    plain = tmp_path / "plain"
    assert ev.main([str(tiny_models[0]), "--data", str(tiny_data), "--split", "all", "--hop-ms", "160", "--out",
                    str(plain), "--tasks", "kws", "--quiet", "--phases", "1"]) == 0
    assert json.loads((plain / f"{tiny_models[0].stem}.json").read_text())["room"] is None


@pytest.mark.parametrize("args, message", [
    (["--room-rt60-s", "3"], "--room-rt60-s"),
    (["--room-rt60-s", "0.5", "--room-distance-m", "3", "1"], "--room-distance-m"),
])
def test_evaluate_refuses_rooms_it_cannot_draw(args, message, capsys):
    with pytest.raises(SystemExit):
        ev.parse_args(["m.onnx", "--data", "d", "--hop-ms", "160", "--out", "o", *args])
    assert message in capsys.readouterr().err


def test_noise_is_mixed_at_the_asked_snr_over_the_clip_and_its_padding():
    rng = np.random.default_rng(0)
    clip = np.concatenate([np.zeros(800), 0.3 * np.sin(np.arange(8000) / 5.0), np.zeros(800)]).astype(np.float32)
    background = rng.standard_normal(3000).astype(np.float32)  # shorter than the clip: looped
    part = slice(800, 8800)
    for snr_db in (20.0, 5.0, 0.0):
        noisy = with_noise(clip, part, background, snr_db, np.random.default_rng(1))
        added = noisy.astype(np.float64) - clip
        measured = 10 * np.log10(np.mean(clip[part].astype(np.float64) ** 2) / np.mean(added[part] ** 2))
        assert measured == pytest.approx(snr_db, abs=0.01)
        assert np.mean(added[:800] ** 2) > 0.1 * np.mean(added[part] ** 2)  # the padding hears it too
    same = with_noise(clip, part, background, 5.0, np.random.default_rng(1))
    other = with_noise(clip, part, background, 5.0, np.random.default_rng(2))
    assert np.array_equal(same, with_noise(clip, part, background, 5.0, np.random.default_rng(1)))
    assert not np.array_equal(same, other)


def test_clips_and_negatives_are_played_at_every_phase_of_the_hop_grid(tiny_data, tiny_models):
    """A lead moves a clip against the hop grid and nothing else; the negative stream's passes each start at
    their lead; the keyword tables pool the plays but count clips in their intervals."""
    from export.evaluation.context import negative_stream
    from streamd.model import load_model

    clips, groups = select_clips(tiny_data, "all")
    clip = next(c for c in clips if c.label == "yes")
    scorer = Scorer(load_model(tiny_models[0]), HOP, phases=4)
    assert scorer.leads == [0, 640, 1280, 1920] and scorer.leads_ms == [0.0, 40.0, 80.0, 120.0]
    n_pad = round(PAD_S * SR)
    audio = scorer.audio(clip)
    for lead in scorer.leads:
        moved = scorer.clip(clip, PAD_S, lead_samples=lead)
        silence = [np.zeros(n_pad + lead, np.float32), np.zeros(n_pad, np.float32)]
        by_hand = scorer.stream([np.concatenate([silence[0], audio, silence[1]])])
        assert np.array_equal(moved.scores, by_hand.scores) and np.array_equal(moved.end_samples, by_hand.end_samples)
    assert np.array_equal(scorer.clip(clip, PAD_S).scores, scorer.clip(clip, PAD_S, lead_samples=0).scores)
    assert not np.allclose(scorer.clip(clip, PAD_S, lead_samples=1280).scores[:10],
                           scorer.clip(clip, PAD_S).scores[:10])  # the same audio, other scores

    stream = negative_stream(Context(scorer, clips, groups, argparse.Namespace(quiet=True)))
    n = len(stream.names)
    assert stream.passes == 4 and len(stream.starts) == 4 * n
    assert [int(stream.starts[k * n]) % HOP for k in range(4)] == scorer.leads
    lengths = np.diff(stream.starts[:n + 1])  # within a pass the clips follow each other without a gap
    assert np.array_equal(np.diff(stream.starts[n:2 * n + 1]), lengths)

    # one clip rejected at every phase counts once in the interval; four clips that would be 0 to 49 %
    rejected = Scored(np.full((5, 1), 0.1, np.float32), HOP * np.arange(1, 6))
    row = det_table([rejected] * 4, rejected, 0, "k", 1.0, SR, HOP, thresholds=(0.5,), phases=4)[0]
    assert row["false_rejects"] == 4 and row["frr_pct"] == 100.0
    assert row["frr_ci95_pct"] == [round(100 * v, 1) for v in metrics.wilson_interval(1, 1)]
    half = np.array([[1, 1, 0, 1], [1, 0, 0, 1]], bool)  # 2 phases x 4 clips: 1, 0.5, 0, 1 right
    assert metrics.ci95(half) == [round(v, 4) for v in metrics.wilson_interval(2.5, 4)]
    assert metrics.ci95(np.array([1, 0, 1], bool)) == metrics.ci95(np.array([[1, 0, 1]], bool))


def test_tag_clips_arrive_into_a_running_stream_with_padding_around_them(tiny_data, tiny_models):
    """Each tag clip is streamed with --tag-pad-s of padding before and after it, at each phase; its top-1 is the
    highest peak score over that stream, and its mean score is over the hops that hold the clip; 0: alone."""
    from export.evaluation.tags import TAG_PAD_S, eval_tags
    from streamd.contract import KIND_TAG
    from streamd.model import load_model

    clips, groups = select_clips(tiny_data, "all")
    model = load_model(tiny_models[0])
    tags = list(model.info.names_of_kind(KIND_TAG))
    columns = [model.info.label_names.index(t) for t in tags]
    kept = [c for c in clips if c.path.parent.name in ("dog", "dog_bark") or in_group(c, groups, "speech")]
    for pad_s, phases in ((TAG_PAD_S, 4), (0.0, 1)):
        scorer = Scorer(model, HOP, phases=phases)
        args = argparse.Namespace(quiet=True, tag_pad_s=pad_s)
        out = eval_tags(Context(scorer, clips, groups, args))
        assert out["pad_s"] == pad_s and out["phases"] == phases and out["n_clips"] == len(kept) == 3
        heard, means, sound_peaks = [], [], []
        for lead in scorer.leads:
            for clip in kept:
                n_lead = round(pad_s * SR) + lead
                audio = scorer.audio(clip)
                silence = [np.zeros(n_lead, np.float32), np.zeros(round(pad_s * SR), np.float32)]
                scored = scorer.stream([np.concatenate([silence[0], audio, silence[1]])])
                heard.append(tags[int(scored.scores[:, columns].max(axis=0).argmax())])
                if not in_group(clip, groups, "speech"):
                    sound_peaks.append(scored.scores[:, columns].max(axis=0))
                inside = (scored.end_samples > n_lead) & (scored.end_samples - HOP < n_lead + len(audio))
                means.append(scored.scores[inside][:, columns].mean(axis=0))
        truth = [tag_truth(c, groups) for c in kept] * phases
        for tag, row in out["per_class"].items():
            assert row["heard_as"] == dict(Counter(h for h, t in zip(heard, truth) if t == tag).most_common())
        means = np.array(means)
        aps = [metrics.average_precision(np.array(truth) == tag, means[:, tags.index(tag)]) for tag in set(truth)]
        assert out["clip_score_mean"]["mAP"] == round(float(np.mean(aps)), 4)
        # the speech score over the clips that are no speech, the speech clips left out, and their top-1 with and
        # without speech among the answers
        sound_peaks = np.array(sound_peaks)
        speech_peaks, dog = sound_peaks[:, tags.index("speech")], tags.index("dog")
        others = np.where(np.arange(len(tags)) == tags.index("speech"), -1.0, sound_peaks)
        assert out["speech_in_sounds"] == {
            "plays": 2 * phases, "threshold": 0.5,
            "share_at_threshold": round(float(np.mean(speech_peaks >= 0.5)), 4),
            "median_peak": round(float(np.median(speech_peaks)), 4),
            "top1_speech_share": round(float(np.mean(sound_peaks.argmax(axis=1) == tags.index("speech"))), 4),
            "top1": round(float(np.mean(sound_peaks.argmax(axis=1) == dog)), 4),
            "top1_without_speech": round(float(np.mean(others.argmax(axis=1) == dog)), 4)}
        assert out["speech_in_sounds"]["top1_without_speech"] >= out["speech_in_sounds"]["top1"]


def test_snr_db_mixes_noise_into_keyword_clips_only(tiny_data, tiny_models, tmp_path):
    from streamd.model import load_model

    clips, _ = select_clips(tiny_data, "all")
    clip = next(c for c in clips if c.label == "yes")
    scorer = Scorer(load_model(tiny_models[0]), HOP)
    clean = scorer.clip(clip, PAD_S, noisy=True)  # no set_noise: nothing to mix
    scorer.set_noise(np.random.default_rng(0).standard_normal(SR).astype(np.float32), 0.0)
    noisy = scorer.clip(clip, PAD_S, noisy=True)
    assert np.array_equal(scorer.clip(clip, PAD_S).scores, clean.scores)
    assert not np.allclose(noisy.scores, clean.scores)
    with pytest.raises(SystemExit, match="noise/ recordings"):
        scorer.set_noise(np.zeros(100, np.float32), 0.0)
    out = tmp_path / "out"
    assert ev.main([str(tiny_models[0]), "--data", str(tiny_data), "--split", "all", "--hop-ms", "160", "--out", str(out),
                    "--quiet", "--tasks", "kws,wakeword", "--snr-db", "0"]) == 0
    noisy_run = json.loads((out / "sat0.json").read_text())
    assert noisy_run["snr_db"] == 0.0 and noisy_run["tasks"]["kws"]["n_clips"] == 4
    assert ev.main([str(tiny_models[0]), "--data", str(tiny_data), "--split", "all", "--hop-ms", "160", "--out",
                    str(tmp_path / "clean"), "--quiet", "--tasks", "wakeword"]) == 0
    clean_run = json.loads((tmp_path / "clean" / "sat0.json").read_text())
    assert clean_run["snr_db"] is None
    for name, info in clean_run["tasks"]["wakeword"]["keywords"].items():  # the negatives are not touched
        noisy_rows = noisy_run["tasks"]["wakeword"]["keywords"][name]["table"]
        assert [r["false_accepts"] for r in info["table"]] == [r["false_accepts"] for r in noisy_rows]


def test_cli_runs_every_task_and_writes_json_plots_and_a_comparison(tiny_data, tiny_models, tmp_path, capsys):
    out = tmp_path / "out"
    assert ev.main([*map(str, tiny_models), "--data", str(tiny_data), "--split", "all", "--hop-ms", "160",
                    "--out", str(out), "--quiet", "--mixture-events", "5"]) == 0
    result = json.loads((out / "sat0.json").read_text())
    assert result["hop_samples"] == HOP and set(result["tasks"]) == set(ev.TASKS)
    assert 0 < result["compute_ms_per_audio_s"] < 1000
    assert result["machine"]["cores"] >= 1 and "isa" in result["machine"]  # compute depends on the CPU

    kws = result["tasks"]["kws"]
    plays = ev.PHASES  # every keyword clip and the negative stream at each phase of the hop grid
    assert kws["n_clips"] == 4 and kws["phases"] == plays == 4
    assert kws["missing_keywords"] == ["up", "down", "left", "right", "on", "off", "stop", "go"]
    assert kws["silence_rule"].startswith("'speech' tag")
    assert 0 <= kws["accuracy_11"] <= 1 and 0 <= kws["accuracy_12"] <= kws["accuracy_11"]
    for key in ("accuracy_11", "accuracy_12"):  # 4 clips: an interval far wider than any one clip's worth
        lo, hi = kws[f"{key}_ci95"]
        assert lo <= kws[key] <= hi and hi - lo > 0.4
    assert np.sum(kws["confusion_12"]) == 4 * plays and len(kws["confusion_11"]) == 11
    # truth rows: yes, no, silence, unknown (the last two are "no keyword" in 11 classes), once per phase
    assert [sum(r) for r in kws["confusion_12"]] == [plays, plays] + [0] * 8 + [plays, plays]
    assert [sum(r) for r in kws["confusion_11"]] == [plays, plays] + [0] * 8 + [2 * plays]
    right = sum(kws["confusion_11"][i][i] for i in range(11))
    assert len(kws["errors"]) == 4 * plays - right and all(e["truth"] != e["predicted"] for e in kws["errors"])
    assert {e["lead_ms"] for e in kws["errors"]} <= {0.0, 40.0, 80.0, 120.0}
    assert {e["clip"] for e in kws["errors"]} <= {d[0] for d in DATA if d[0].startswith("kws/gsc_v2")}

    wake = result["tasks"]["wakeword"]
    assert wake["negative_clips"] == 6  # speech, noise, esc50 x2, urbansound8k, not_wake_word
    negative_samples = sum(len(d[3]()) for d in DATA if d[0].startswith(("speech", "noise", "tags", "kws/precise/not")))
    played = 0
    for lead in (0, HOP // 4, HOP // 2, 3 * HOP // 4):  # each pass starts at its phase of the hop grid
        played += (lead - played) % HOP + negative_samples
    assert wake["phases"] == plays and wake["leads_ms"] == [0.0, 40.0, 80.0, 120.0]
    assert wake["negative_hours"] == round(-(-played // HOP) * HOP / SR / 3600, 4)
    assert wake["trigger"] == {"threshold": "swept", "n_of_m": [1, 1], "refractory_s": 1.0, "speech_gate": 0.5,
                               "speech_gate_s": 1.28, "pause_before": 0.5, "pause_before_s": [0.32, 1.28],
                               "pause_drop_db": 10.0}
    assert set(wake["keywords"]) == {"yes", "no", "computer"}
    for info in wake["keywords"].values():
        assert info["positives"] == 1
        assert [r["threshold"] for r in info["table"]] == list(DET_THRESHOLDS)
        assert all(r["frr_pct"] in (0.0, 25.0, 50.0, 75.0, 100.0) and r["fa_per_h"] >= 0 for r in info["table"])
        frr = [r["frr_pct"] for r in info["table"]]
        assert frr == sorted(frr)  # a higher threshold never rejects less
        where = info["at_threshold"]["false_accepts_where"]  # at --threshold: each false accept, placed
        assert len(where["places"]) == sum(where["by_source"].values()) == info["at_threshold"]["false_accepts"]
        negatives = {d[0]: len(d[3]()) / SR for d in DATA if d[0].startswith(("speech", "noise", "tags", "kws/precise/not"))}
        assert all(0 < p["at_s"] <= negatives[p["clip"]] + HOP / SR and p["pass"] in range(plays)
                   for p in where["places"])

    tags = result["tasks"]["tags"]  # each tag clip at each phase, as the keyword clips
    assert tags["n_clips"] == 3 and tags["skipped_labels"] == ["cat"]
    assert tags["phases"] == plays and tags["leads_ms"] == wake["leads_ms"]
    lo, hi = tags["clip_score_max"]["top1_ci95"]  # 3 clips, not 12 plays: a wide interval
    assert lo <= tags["clip_score_max"]["top1_accuracy"] <= hi and hi - lo > 0.5
    assert set(tags["per_class"]) == {"dog", "speech"} and tags["per_class"]["dog"]["clips"] == 2
    for key in ("clip_score_max", "clip_score_mean"):
        assert 0 < tags[key]["mAP"] <= 1 and 0 <= tags[key]["top1_accuracy"] <= 1 and tags[key]["labels_in_map"] == 2
        per_label = [tags["per_class"][t][f"top1_{key.removeprefix('clip_score_')}"] for t in ("dog", "speech")]
        assert tags[key]["top1_balanced"] == round(sum(per_label) / 2, 4)
    for tag, row in tags["per_class"].items():  # the confusions count every play; the right ones are the top-1 share
        assert sum(row["heard_as"].values()) == row["clips"] * plays
        assert row["heard_as"].get(tag, 0) == round(row["top1_max"] * row["clips"] * plays)
    by_source = tags["top1_by_source"]  # esc50's dog (its cat is not a tag), urbansound8k's dog_bark, speech
    assert {k: v["clips"] for k, v in by_source.items()} == {"speech": 1, "tags/esc50": 1, "tags/urbansound8k": 1}
    right = sum(round(v["top1_accuracy"] * v["clips"] * plays) for v in by_source.values())
    assert right == round(tags["clip_score_max"]["top1_accuracy"] * 3 * plays)
    points = tags["thresholds"]["per_tag"]  # positives count clips, not plays
    assert points["dog"]["positives"] == 2 and points["speech"]["positives"] == 1
    assert tag_source("tags/esc50/dog") == "tags/esc50" and tag_source("tags") == "tags"
    assert tag_source("speech") == "speech" and tag_source("tags/mine") == "tags/mine"

    mix = result["tasks"]["mixtures"]
    assert mix["events"] == 2 and [e["label"] for e in mix["truth"]] == ["dog", "dog"]
    f1 = mix["event_f1_onset_offset"]
    assert f1["tp"] + f1["fn"] == 2 and f1["tp"] + f1["fp"] == mix["predicted_segments"]

    assert result["tasks"]["alarms"] == {"skipped": "the model has no smoke_alarm tag"}

    for name in ("sat0_det.png", "sat0_kws_confusion_12.png", "sat0_tags_ap.png", "sat1.json",
                 "comparison_det_computer.png"):
        assert (out / name).stat().st_size > 1000
    comparison = json.loads((out / "comparison.json").read_text())["comparison"]
    assert list(comparison) == ["sat0", "sat1"]
    assert comparison["sat0"]["kws_acc_11"] == kws["accuracy_11"]
    assert comparison["sat1"]["tags_mAP"] == json.loads((out / "sat1.json").read_text())["tasks"]["tags"]["clip_score_max"]["mAP"]
    table = capsys.readouterr().out
    assert "kws_acc_11" in table and "sat0" in table and "sat1" in table


def test_a_speech_commands_tree_is_evaluated_through_eval_set(tiny_models, tmp_path):
    """Someone else's Speech Commands-style corpus, official test speakers only: its commands and other
    words are the keyword task, its computer and hey_computer folders the wake word's positives, its
    _background_noise_ the negative stream."""
    from export.data import eval_set

    tree = tmp_path / "sc"
    files = {"yes/aa11_nohash_0.wav": _tone(1, 500), "yes/dd44_nohash_0.wav": _tone(1, 520),
             "no/bb22_nohash_0.wav": _tone(1, 900), "marvin/cc33_nohash_0.wav": _tone(1, 700),
             "computer/ee55_nohash_0.wav": _tone(1.5, 400), "hey_computer/ff66_nohash_0.wav": _tone(1.5, 410),
             "_silence_/0.wav": _tone(1, 0, seed=1), "_background_noise_/white.wav": _tone(3, 0, seed=2)}
    for name, audio in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tree / name, audio, SR, subtype="PCM_16")
    testing = ["yes/aa11_nohash_0.wav", "no/bb22_nohash_0.wav", "marvin/cc33_nohash_0.wav",
               "computer/ee55_nohash_0.wav", "hey_computer/ff66_nohash_0.wav", "_silence_/0.wav"]  # not dd44
    (tree / "testing_list.txt").write_text("\n".join(testing) + "\n")
    (tree / "validation_list.txt").write_text("")
    eval_set.main([str(tree), str(tmp_path / "eval"), "--sc-split", "testing"])
    clips, groups = select_clips(tmp_path / "eval", "all")
    assert sorted(groups.values()) == ["kws/gsc_v2/_silence_", "kws/gsc_v2/_unknown_", "kws/gsc_v2/no",
                                       "kws/gsc_v2/yes", "kws/other/computer", "kws/other/hey_computer", "noise"]
    assert len(keyword_positives(clips, groups, "computer")) == 2

    out = tmp_path / "out"
    assert ev.main([str(tiny_models[0]), "--data", str(tmp_path / "eval"), "--split", "all", "--hop-ms", "160",
                    "--tasks", "kws,wakeword", "--out", str(out), "--quiet"]) == 0
    result = json.loads((out / "sat0.json").read_text())["tasks"]
    assert result["kws"]["n_clips"] == 4  # silence and unknown, each played at every phase:
    assert np.sum(result["kws"]["confusion_12"], axis=1)[-2:].tolist() == [ev.PHASES, ev.PHASES]
    wake = result["wakeword"]
    assert wake["keywords"]["computer"]["positives"] == 2 and wake["negative_hours"] > 0
    with pytest.raises(SystemExit, match="testing_list"):
        eval_set.read_source(tmp_path / "eval" / "kws", "testing")  # a folder without the official lists


def test_a_tree_of_ones_own_keyword_is_laid_out_as_its_positives_with_keywords(tmp_path):
    """--keywords "hey kitchen": a tree's hey_kitchen/ holds the word's positives, labelled as a recipe spells it,
    under kws/other/; without it the same folder is other words (negatives)."""
    from export.data import eval_set
    from export.train import clip_role

    tree = tmp_path / "mine"
    for name, audio in {"hey_kitchen/me_nohash_0.wav": _tone(1, 600), "hey_kitchen/me_nohash_1.wav": _tone(1, 610),
                        "marvin/me_nohash_0.wav": _tone(1, 700)}.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tree / name, audio, SR, subtype="PCM_16")
    eval_set.main([str(tree), str(tmp_path / "own"), "--keywords", "hey kitchen"])
    clips, groups = select_clips(tmp_path / "own", "all")
    assert sorted((groups[c.path], c.label) for c in clips) == [
        ("kws/gsc_v2/_unknown_", "_unknown_"), ("kws/other/hey_kitchen", "hey kitchen"),
        ("kws/other/hey_kitchen", "hey kitchen")]
    assert len(keyword_positives(clips, groups, "hey kitchen")) == 2
    assert {clip_role(c, ("hey kitchen",)) for c in clips} == {("keyword", "hey kitchen"), ("unknown", "_unknown_")}
    eval_set.main([str(tree), str(tmp_path / "plain")])
    clips, groups = select_clips(tmp_path / "plain", "all")
    assert keyword_positives(clips, groups, "hey kitchen") == []
    assert sorted(c.attr("word") for c in clips) == ["hey_kitchen", "hey_kitchen", "marvin"]


def test_a_folder_of_sound_classes_is_evaluated_through_eval_set(tiny_models, tmp_path, capsys):
    """Household recordings of one's own, one folder per class: the tags task scores the classes the model
    has (dog_bark is its dog), lists the others as skipped, and reports the folder as a source of its own;
    files it cannot read (a phone's .m4a) are left out and said to be."""
    from export.data import eval_set

    mine = tmp_path / "my_house"
    for name, audio in {"dog/a.wav": _tone(2, 2000), "dog/b.wav": _tone(2, 2100, seed=3),
                        "dog_bark/c.flac": _tone(1.5, 2500), "toaster/d.wav": _tone(2, 3000)}.items():
        (mine / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(mine / name, audio, SR, subtype="PCM_16")
    (mine / "dog" / "e.m4a").write_bytes(b"ftypM4A ")
    eval_set.main([str(mine), str(tmp_path / "eval"), "--tags"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "left out 1 file not in .wav/.flac/.ogg/.mp3" in err[0] and "e.m4a" in err[0] and "ffmpeg" in err[0]
    clips, groups = select_clips(tmp_path / "eval", "all")
    assert sorted(groups.values()) == ["tags/my_house/dog", "tags/my_house/dog", "tags/my_house/dog_bark",
                                       "tags/my_house/toaster"]
    out = tmp_path / "out"
    assert ev.main([str(tiny_models[0]), "--data", str(tmp_path / "eval"), "--split", "all", "--hop-ms", "160",
                    "--tasks", "tags", "--out", str(out), "--quiet"]) == 0
    tags = json.loads((out / "sat0.json").read_text())["tasks"]["tags"]
    assert tags["n_clips"] == 3 and tags["skipped_labels"] == ["toaster"]
    assert tags["top1_by_source"]["tags/my_house"]["clips"] == 3 and tags["per_class"]["dog"]["clips"] == 3
    with pytest.raises(SystemExit, match="no audio files in class folders"):
        eval_set.main([str(tmp_path / "out"), str(tmp_path / "eval2"), "--tags"])


def test_several_data_folders_are_evaluated_as_one(tiny_models, tiny_data, tmp_path):
    """--data twice (../shared/data and your recordings beside it): the tags task scores both folders' clips,
    each from its own folder, and the JSON names both; a folder given twice counts its clips once."""
    from export.data import eval_set
    from export.evaluation.clips import select_sources

    mine = tmp_path / "my_house"
    for name, audio in {"dog/a.wav": _tone(2, 2000), "dog/b.wav": _tone(2, 2100, seed=3)}.items():
        (mine / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(mine / name, audio, SR, subtype="PCM_16")
    eval_set.main([str(mine), str(tmp_path / "eval"), "--tags"])
    every, _ = select_clips(tiny_data, "all")
    clips, groups = select_sources([tiny_data, tmp_path / "eval" / "manifest.csv", tiny_data], "all")
    assert len(clips) == len(every) + 2 and len({c.path for c in clips}) == len(clips)
    assert [groups[c.path] for c in clips[-2:]] == ["tags/my_house/dog", "tags/my_house/dog"]

    outs = {}
    for name, data in (("one", [tiny_data]), ("both", [tiny_data, tmp_path / "eval"])):
        outs[name] = tmp_path / name
        assert ev.main([str(tiny_models[0]), *[a for d in data for a in ("--data", str(d))], "--split", "all",
                        "--hop-ms", "160", "--tasks", "tags", "--out", str(outs[name]), "--quiet"]) == 0
    one, both = (json.loads((outs[n] / "sat0.json").read_text()) for n in ("one", "both"))
    assert both["data"] == [str(tiny_data.resolve()), str((tmp_path / "eval").resolve())]
    assert both["tasks"]["tags"]["n_clips"] == one["tasks"]["tags"]["n_clips"] + 2
    assert both["tasks"]["tags"]["top1_by_source"]["tags/my_house"]["clips"] == 2
    assert "tags/my_house" not in one["tasks"]["tags"]["top1_by_source"]


def test_a_folder_of_synthetic_music_is_a_negative_stream_of_its_own(tiny_models, tmp_path):
    """synth_music writes a shared-data-style folder: the wakeword task counts false accepts on the
    music alone (no positives there), as docs/evaluation.md tells users to measure it."""
    from export.data import synth_music

    synth_music.generate(tmp_path / "music", count=2, seconds=4.0, seed=3)
    out = tmp_path / "out"
    assert ev.main([str(tiny_models[0]), "--data", str(tmp_path / "music"), "--split", "all", "--hop-ms", "160",
                    "--out", str(out), "--quiet", "--tasks", "wakeword"]) == 0
    wake = json.loads((out / "sat0.json").read_text())["tasks"]["wakeword"]
    assert wake["negative_clips"] == 2 and wake["negative_hours"] == round(ev.PHASES * 8.0 / 3600, 4)  # every pass
    for info in wake["keywords"].values():
        assert info["positives"] == 0 and info["best_within_0.5_fa_per_h"] is None
        assert all(r["frr_pct"] is None and r["fa_per_h"] >= 0 for r in info["table"])
        above = [r["negative_hops_above_pct"] for r in info["table"]]
        assert above == sorted(above, reverse=True) and above[0] > 0  # the music was streamed and scored


def test_a_folder_of_synthetic_look_alikes_is_a_negative_stream(tiny_models, tmp_path):
    """synth_alarms' beeps, chimes and squeaks count as negatives, so its output can be evaluated alone."""
    from export.data import synth_alarms

    synth_alarms.generate(tmp_path / "squeaks", count=0, negatives=1, seconds=3.0, seed=3, squeak_count=2)
    out = tmp_path / "out"
    assert ev.main([str(tiny_models[0]), "--data", str(tmp_path / "squeaks"), "--split", "all", "--hop-ms", "160",
                    "--out", str(out), "--quiet", "--tasks", "wakeword"]) == 0
    wake = json.loads((out / "sat0.json").read_text())["tasks"]["wakeword"]
    assert wake["negative_clips"] == 3 and wake["negative_hours"] == round(ev.PHASES * 9.0 / 3600, 4)


def test_alarms_task_tells_whole_beep_groups_from_parts(tiny_data, tmp_path):
    """The alarm pattern detector answers whole groups only: all of them, at every pitch, while the groups
    a clip holds only part of (its first, when it starts mid-group) lower the all-groups figure."""
    from export.alarm_pattern import main as export_alarm

    model = tmp_path / "alarm.onnx"
    assert export_alarm(["--out", str(model)]) == 0
    out = tmp_path / "out"
    assert ev.main([str(model), "--data", str(tiny_data), "--split", "all", "--hop-ms", "160", "--out", str(out),
                    "--quiet", "--tasks", "alarms"]) == 0
    alarms = json.loads((out / "alarm.json").read_text())["tasks"]["alarms"]
    assert 0 < alarms["whole_groups"] < alarms["beep_groups"]
    row = alarms["table"][0]  # on 0.3
    assert row["whole_groups_detected_pct"] == 100.0 and row["detected_pct"] < 100.0
    assert set(row["variants_whole_groups_detected_pct"].values()) == {100.0}
    assert row["false_starts"] == 0  # the tiny data's gated tones at 2-3 kHz beep steadily: no alarm
    # every scene played at each phase of the hop grid: the same alarms and groups, counted once each
    assert alarms["phases"] == ev.PHASES and alarms["leads_ms"] == [0.0, 40.0, 80.0, 120.0]
    assert ev.main([str(model), "--data", str(tiny_data), "--split", "all", "--hop-ms", "160", "--out", str(out),
                    "--quiet", "--tasks", "alarms", "--phases", "1"]) == 0
    once = json.loads((out / "alarm.json").read_text())["tasks"]["alarms"]
    assert once["phases"] == 1 and once["leads_ms"] == [0.0]
    assert [once[k] for k in ("alarms", "beep_groups", "whole_groups")] == [alarms[k] for k in
                                                                             ("alarms", "beep_groups", "whole_groups")]
    assert once["table"][0]["whole_groups_detected_pct"] == 100.0


def test_cli_refuses_a_hop_the_model_does_not_accept(tiny_data, tiny_models, tmp_path):
    with pytest.raises(SystemExit, match="100.0 ms .1600 samples. is not one it accepts: .160.0, 320.0. ms"):
        ev.main([str(tiny_models[0]), "--data", str(tiny_data), "--split", "all", "--hop-ms", "100",
                 "--out", str(tmp_path), "--quiet", "--tasks", "kws"])


def test_tag_operating_points_per_tag_and_pooled():


    tags = ["dog", "siren", "smoke_alarm"]
    truth = ["dog"] * 6 + ["siren"] * 2 + ["speech"] * 4
    peaks = np.zeros((12, 3))
    peaks[:6, 0] = [0.9, 0.8, 0.7, 0.65, 0.6, 0.3]  # dogs: separable above 0.55 but one low
    peaks[6:, 0] = [0.5, 0.2, 0.1, 0.1, 0.5, 0.2]
    peaks[6:8, 1] = 0.4  # sirens: two clips only -> pooled threshold
    points = metrics.tag_operating_points(truth, peaks, tags, min_positives=5)
    dog = points["per_tag"]["dog"]
    assert dog["from"] == "tag" and dog["positives"] == 6
    assert 0.5 < dog["threshold"] <= 0.6 and dog["tp"] == 5 and dog["fp"] == 0  # best F1: 5 of 6, no false alarm
    assert points["per_tag"]["siren"]["from"] == "pooled"
    assert points["per_tag"]["smoke_alarm"] == {"positives": 0, "threshold": points["pooled"]["threshold"], "from": "pooled"}
    # pooled over dog and siren columns: the sirens at 0.4 and the dogs above 0.55 vs negatives at 0.5
    assert points["pooled"]["f1"] == max(metrics.detection_f1(
        (np.array(truth)[:, None] == np.array(tags[:2])[None]).ravel(), peaks[:, :2].ravel(), t)["f1"]
        for t in metrics.TAG_THRESHOLDS)
    # each clip played at 3 phases (rows are plays): positives still count clips, F1 counts plays
    twice = metrics.tag_operating_points(truth * 3, np.tile(peaks, (3, 1)), tags, min_positives=5, phases=3)
    assert twice["per_tag"]["dog"]["positives"] == 6 and twice["per_tag"]["dog"]["tp"] == 15
    assert twice["per_tag"]["siren"]["from"] == "pooled" and twice["per_tag"]["siren"]["positives"] == 2
    thresholds = {t: p["threshold"] for t, p in points["per_tag"].items()}
    assert {t: p["threshold"] for t, p in twice["per_tag"].items()} == thresholds


def test_moving_mean_matches_the_services_smoother():
    from streamd.smoothing import TagSmoother, TagSmootherConfig

    rng = np.random.default_rng(0)
    scores = rng.random((40, 1))
    smoothed = moving_mean(scores, 3)[:, 0]
    # the smoother turns on exactly when the moving mean first reaches its on-threshold
    on = 0.7
    first = int(np.argmax(smoothed >= on))
    smoother = TagSmoother("x", TagSmootherConfig(on_threshold=on, off_threshold=0.0), 16000, 2560)
    decisions = [smoother.update(float(s), (i + 1) * 2560) for i, s in enumerate(scores[:, 0])]
    assert next(i for i, d in enumerate(decisions) if d) == first


def test_the_evaluations_tag_window_is_the_configs_in_hops_of_each_latency():
    """Thresholds and mixtures smooth over config.yaml's tag window, so the card's tag thresholds are for what
    the service runs, at 160 ms and at any other hop."""
    from pathlib import Path

    from streamd.config import load_config

    config = load_config(Path(ev.__file__).resolve().parents[1] / "config.yaml")
    assert config.tag_defaults.window_s == TAG_WINDOW_S
    for hop_samples, hops in ((2560, 3), (5120, 2), (7680, 1)):
        assert config.tag_defaults.smoother(hop_samples, 16000).window_hops == hops
        segments = tag_segments(Scored(np.array([[0.0], [1.0], [1.0], [1.0], [0.0], [0.0], [0.0]]),
                                             np.arange(1, 8) * hop_samples), ["t"], [0], 16000, hop_samples)
        # three hops of sound: the mean over the window stays at or above 0.3 for hops - 1 hops after them
        assert len(segments) == 1 and segments[0].offset_s == (3 + hops) * hop_samples / 16000, (hops, segments)


def test_detection_matching_accepts_late_onsets_inside_the_event():
    E = metrics.Event
    truth = [E("dog", 10.0, 14.0), E("siren", 20.0, 24.0), E("dog", 30.0, 31.0)]
    predicted = [E("dog", 11.8, 14.5),   # 1.8 s late: a detection, not an onset match
                 E("dog", 12.5, 13.0),   # a second segment of the same event: a false alarm
                 E("siren", 24.4, 25.0),  # starts within the collar after the end
                 E("cat", 30.0, 31.0)]   # wrong label
    assert metrics.match_overlaps(truth, predicted, 0.5) == (2, 2, 1)
    assert metrics.match_events(truth, predicted, 0.5, check_offset=False) == (0, 4, 3)


def test_beep_groups_join_beeps_closer_than_the_group_gap():
    t3 = [(0.0, 0.5), (1.0, 1.5), (2.0, 2.5), (4.0, 4.5), (5.0, 5.5)]  # 3 beeps, 1.5 s pause, 2 beeps
    assert beep_groups(t3, 2.0) == [(2.0, 4.5), (6.0, 7.5)]
    assert beep_groups([], 2.0) == []
    # whole: all three beeps, and not cut by the clip's end (here 5.3 s: the second group is a part either way)
    assert whole_groups(t3, "t3", 5.3) == [True, False]
    assert whole_groups(t3[1:], "t3", 10.0) == [False, False]  # a clip that starts at the second beep
    t4 = [(0.0, 0.1), (0.2, 0.3), (0.4, 0.5), (0.6, 0.7), (5.7, 5.8)]
    assert whole_groups(t4, "t4", 5.75) == [True, False]


def test_alarm_scenes_hold_each_group_where_the_truth_says_and_background_elsewhere():
    from types import SimpleNamespace

    ctx = SimpleNamespace(scorer=SimpleNamespace(sample_rate_hz=SR, audio=None), clips=[], groups={})
    noisy, quiet = alarm_scenes(ctx), alarm_scenes(ctx, quiet=True)
    assert len(noisy) == len(quiet) == 2 * ALARM_CLIPS_PER_KIND
    for (audio, groups, whole), (silent, same_groups, _) in zip(noisy[:6], quiet[:6]):
        assert len(whole) == len(groups) and all(whole[1:-1])  # only the first and last may be parts
        assert groups == same_groups and len(audio) == len(silent) == round((2 * ALARM_LEAD_S + ALARM_SECONDS) * SR)
        lead = round(ALARM_LEAD_S * SR)
        assert not silent[:lead].any() and not silent[-lead:].any()  # the alarm only between the leads
        bed_db = 20 * np.log10(np.sqrt(np.mean(audio[:lead] ** 2)))
        assert abs(bed_db - 20 * np.log10(BACKGROUND_RMS)) < 0.5
        for start_s, end_s in groups:
            assert ALARM_LEAD_S <= start_s < end_s <= ALARM_LEAD_S + ALARM_SECONDS
            beep = silent[round(start_s * SR):round(end_s * SR)]
            assert np.sqrt(np.mean(beep ** 2)) > 3 * BACKGROUND_RMS  # the group is loud where it says


def test_alarm_variants_are_held_out_alarms_at_their_own_pitch_and_leave_the_default_scenes_alone():
    from types import SimpleNamespace

    ctx = SimpleNamespace(scorer=SimpleNamespace(sample_rate_hz=SR, audio=None), clips=[], groups={})
    before = alarm_scenes(ctx)
    variants = alarm_variant_scenes(ctx)
    assert list(variants) == list(ALARM_VARIANTS)
    lead = round(ALARM_LEAD_S * SR)
    for name, scenes in variants.items():
        assert len(scenes) == ALARM_VARIANT_CLIPS
        kind, (lo, hi) = ALARM_VARIANTS[name]
        if kind == "t3low":
            lo, hi = 495.0, 545.0
        for audio, groups, _ in scenes[:3]:
            assert groups and len(audio) == round((2 * ALARM_LEAD_S + ALARM_SECONDS) * SR)
            alarm = audio[lead:-lead]
            peak_hz = np.argmax(np.abs(np.fft.rfft(alarm))) * SR / len(alarm)
            assert lo * 0.99 < peak_hz < hi * 1.01, name
    again = alarm_scenes(ctx)  # the default scenes do not depend on the variants being drawn
    assert all(np.array_equal(a, b) and g == h for (a, g, _), (b, h, _) in zip(before, again))


def test_a_humming_or_offset_microphone_adds_the_same_to_every_block_as_to_one_stream():
    scorer = Scorer.__new__(Scorer)  # only the microphone: no model needed
    scorer.sample_rate_hz, scorer.hum_db, scorer.dc_offset = SR, -40.0, 0.05
    silence = np.zeros(SR, np.float32)
    whole = scorer._microphone(silence, 0)
    parts = np.concatenate([scorer._microphone(silence[:1000], 0), scorer._microphone(silence[1000:], 1000)])
    np.testing.assert_allclose(parts, whole, atol=1e-7)  # the hum's phase runs on across blocks
    assert np.mean(whole) == pytest.approx(0.05, abs=1e-3)
    assert 20 * np.log10(np.std(whole)) == pytest.approx(-40.0, abs=0.1)
    spectrum = np.abs(np.fft.rfft(whole - whole.mean()))
    assert np.argmax(spectrum) == round(HUM_HZ)  # 1 Hz bins over one second
    scorer.hum_db, scorer.dc_offset = None, 0.0
    assert scorer._microphone(silence, 0) is silence  # no fault: the block untouched


def test_alarm_sweep_makes_the_asked_pitch_and_the_shipped_model_hears_an_alarm_at_3200_hz():
    from pathlib import Path

    from export.alarm_sweep import ALARM_RMS, alarm, sweep

    audio = alarm(3800, seed=100, sample_rate_hz=16000)[16000:]
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 3800) < 20
    beeping = np.abs(audio) > 0.02
    assert 0.8 * ALARM_RMS < np.sqrt(np.mean(audio[beeping] ** 2)) < 1.3 * ALARM_RMS
    shipped = Path(__file__).resolve().parents[1] / "models" / "streamd-sat.onnx"
    peaks = sweep(str(shipped), pitches_hz=(3200, 4500), alarms_per_pitch=2)
    assert sorted(peaks) == [3200, 4500] and all(0.0 <= p <= 1.0 for v in peaks.values() for p in v)
    assert min(peaks[3200]) > 0.3  # the middle of the band every shipped model trained on


def test_hop_levels_do_not_depend_on_how_the_audio_is_cut():
    from export.evaluation.streaming import HopLevels
    from streamd.gate import level_db

    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(HOP * 5) * np.repeat([0.01, 0.1, 0.001, 0.3, 0.05], HOP)).astype(np.float32)
    whole = [level_db(hop) for hop in audio.reshape(5, HOP)]
    for cuts in ([HOP * 5], [1, HOP, 3 * HOP - 1, HOP], [777] * (HOP * 5 // 777) + [HOP * 5 % 777]):
        levels = HopLevels(HOP)
        for block in np.split(audio, np.cumsum(cuts)[:-1]):
            levels.add(block)
        assert levels.db == pytest.approx(whole)
    assert whole[2] < whole[0] - 15 < whole[1] - 30  # the hops' levels differ as their loudness does
