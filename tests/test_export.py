"""The family registry, checkpoints, and the export command (checkpoint -> checked contract file)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from export.export_model import main as export_main
from export.model_card import size_phrase
from export.families import FAMILIES, build_model, default_size, load_checkpoint, save_checkpoint, sizes
from export.labels import DEFAULT_LABELS
from streamd.model import load_model
from tiny_families import LABELS, TINY, audio, tiny


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_sat_sizes_span_a_quarter_to_six_million_parameters():
    counts = {size: n_params(build_model("sat", DEFAULT_LABELS, size)) for size in sizes("sat")}
    assert list(counts) == ["tiny", "small", "base", "large"] and default_size("sat") == "small"
    assert counts["tiny"] < counts["small"] < counts["base"] < counts["large"]
    assert 0.2e6 < counts["tiny"] < 0.3e6 and 0.5e6 < counts["small"] < 0.6e6 and 6e6 < counts["large"] < 6.6e6
    assert n_params(build_model("sat", DEFAULT_LABELS)) == counts["small"]


def test_every_family_builds_at_its_default_size():
    for family in FAMILIES:
        model = build_model(family, DEFAULT_LABELS)
        assert model.card.family == family and len(model.card.labels) == len(DEFAULT_LABELS)
        assert model.card.hop_samples[0] == 2560


def test_registry_errors_name_the_choices():
    with pytest.raises(ValueError, match=r"unknown family 'rnn'; known: sat, uit, dscnn, bcresnet, mobilenet"):
        build_model("rnn", LABELS)
    with pytest.raises(ValueError, match=r"family 'sat' has sizes \['base', 'large', 'small', 'tiny'\]"):
        build_model("sat", LABELS, "huge")
    with pytest.raises(ValueError, match=r"SATConfig has no field\(s\) \['depth'\]"):
        build_model("sat", LABELS, depth=3)


def test_frontend_override_from_plain_data():
    model = build_model("uit", LABELS, "tiny", frontend={"n_mels": 32, "f_max_hz": 7000.0}, patch_mels=16)
    assert model.frontend.cfg.n_mels == 32 and model.frontend.cfg.f_max_hz == 7000.0


@pytest.mark.parametrize("family", ["sat", "bcresnet"])
def test_checkpoint_round_trip(family, tmp_path):
    model = tiny(family)
    size, overrides = TINY[family]
    path = save_checkpoint(model, tmp_path / f"{family}.pt", family, size, overrides, {"provenance": {"recipe": "test"}})
    loaded, meta = load_checkpoint(path)
    assert meta["family"] == family and meta["size"] == size and meta["extra"]["provenance"] == {"recipe": "test"}
    assert meta["overrides"] == json.loads(json.dumps(overrides))  # stored as plain data
    assert torch.equal(loaded.frontend.feature_std, model.frontend.feature_std)
    assert meta["normalisation"]["mean"] == pytest.approx(model.frontend.feature_mean.tolist())
    x = torch.from_numpy(audio(2.0))[None]
    with torch.no_grad():
        assert torch.equal(loaded.stream(x, 2560), model.stream(x, 2560))


def test_load_checkpoint_rejects_a_bare_state_dict(tmp_path):
    path = tmp_path / "bare.pt"
    torch.save(tiny("dscnn").state_dict(), path)
    with pytest.raises(ValueError, match=r"not a streamd-checkpoint/1 checkpoint"):
        load_checkpoint(path)


def test_export_command_writes_a_checked_file_with_full_metadata(tmp_path, capsys):
    family = "sat"
    size, overrides = TINY[family]
    checkpoint = save_checkpoint(tiny(family), tmp_path / "sat.pt", family, size, overrides,
                                 {"provenance": {"recipe": "unit test"}, "licence": "CC0-1.0"})
    out = tmp_path / "models" / "sat.onnx"
    rc = export_main([str(checkpoint), "--out", str(out), "--int8", "--seconds", "3",
                      "--provenance-json", '{"data": "synthetic"}'])
    printed = capsys.readouterr().out
    assert rc == 0
    model = load_model(out)
    assert model.info.licence == "CC0-1.0"
    assert model.info.provenance["recipe"] == "unit test" and model.info.provenance["data"] == "synthetic"
    assert model.info.provenance["checkpoint"] == "sat.pt" and "code_revision" in model.info.provenance
    assert model.info.extra["size"] == "tiny" and int(model.info.extra["parameters"]) == n_params(tiny(family))
    assert json.loads(model.info.extra["overrides"]) == {**overrides, "hop_columns": [1, 2, 3]}
    assert size_phrase(model.info.extra) == f" size `tiny` with `{model.info.extra['overrides']}`"
    assert size_phrase({"size": "small", "overrides": "{}"}) == " size `small`" and size_phrase({}) == ""
    for hop_ms in (160, 320, 480):  # one parity row and one int8 row per hop
        assert sum(line.startswith(f"| {hop_ms * 16} | {hop_ms} |") for line in printed.splitlines()) == 1
        assert sum(line.startswith(f"| {hop_ms} | ") for line in printed.splitlines()) == 1
    q = load_model(tmp_path / "models" / "sat.int8.onnx")
    assert q.info.extra["quantization"] == "int8-dynamic" and q.info.labels == model.info.labels
    scores, _ = q.step(np.zeros(2560, np.float32), q.new_state())
    assert np.all(np.isfinite(scores))


def test_export_command_licence_flag_wins(tmp_path, capsys):
    checkpoint = save_checkpoint(tiny("dscnn"), tmp_path / "d.pt", "dscnn", *TINY["dscnn"])
    out = tmp_path / "d.onnx"
    assert export_main([str(checkpoint), "--out", str(out), "--licence", "Apache-2.0", "--seconds", "2"]) == 0
    assert load_model(out).info.licence == "Apache-2.0"
    assert "| 7680 | 480 |" in capsys.readouterr().out


def _fa_rows(fa_per_h: dict[float, float], frr: dict[float, int] | None = None) -> list[dict]:
    return [{"threshold": t, "false_rejects": (frr or {}).get(t, 0), "frr_pct": None, "false_accepts": round(f),
             "fa_per_h": f, "negative_hops_above_pct": 0.0} for t, f in fa_per_h.items()]


def test_config_thresholds_must_hold_on_the_music_too():
    from export.model_card import config_thresholds

    wake = {"keywords": {
        "go": {"table": _fa_rows({0.4: 3.0, 0.5: 1.0, 0.7: 0.0, 0.9: 0.0})},
        "computer": {"table": _fa_rows({0.5: 1.0, 0.8: 0.3, 0.9: 0.0}, frr={0.5: 0, 0.8: 1, 0.9: 2})},
    }}
    music = {"keywords": {
        "go": {"table": _fa_rows({0.4: 30.0, 0.5: 9.0, 0.7: 1.5, 0.9: 0.0})},
        "computer": {"table": _fa_rows({0.5: 3.0, 0.8: 3.0, 0.9: 0.0})},
    }}
    assert config_thresholds(wake) == {"go": 0.5, "computer": 0.8}
    assert config_thresholds(wake, music=music) == {"go": 0.7, "computer": 0.9}


def test_the_wake_word_threshold_must_also_hold_on_the_talk_and_the_commands_not():
    from export.model_card import config_thresholds

    wake = {"keywords": {
        "go": {"table": _fa_rows({0.5: 1.0, 0.7: 0.0, 0.9: 0.0})},
        "computer": {"table": _fa_rows({0.6: 0.0, 0.8: 0.0, 0.95: 0.0}, frr={0.6: 0, 0.8: 0, 0.95: 1})},
    }}
    talk = {"keywords": {
        "go": {"table": _fa_rows({0.5: 20.0, 0.7: 9.0, 0.9: 3.0})},
        "computer": {"table": _fa_rows({0.6: 12.0, 0.8: 1.9, 0.95: 0.0})},
    }}
    assert config_thresholds(wake) == {"go": 0.5, "computer": 0.6}
    assert config_thresholds(wake, talk=talk) == {"go": 0.5, "computer": 0.8}


def test_card_states_the_interval_the_evaluation_gives_and_nothing_for_older_results():
    from export.model_card import interval

    assert interval([0.908, 0.955]) == "95 % interval 90.8-95.5 %"
    assert interval(None) == "" and interval([]) == ""  # an evaluation JSON written before the intervals


def test_card_says_how_often_other_sounds_reach_the_speech_gate_and_nothing_for_older_results():
    from export.model_card import speech_in_sounds_line

    heard = {"plays": 1556, "threshold": 0.5, "share_at_threshold": 0.6503, "median_peak": 0.7019}
    assert speech_in_sounds_line({"speech_in_sounds": heard}) == [
        "- Speech in the other tag clips (1556 plays): the speech score reaches 0.5, where the speech gate opens, in "
        '65.0% of them (median peak 0.70); lower is better (docs/data.md "Speech at every onset").']
    assert speech_in_sounds_line({}) == []  # an evaluation JSON written before the measure, or a model without speech
    assert speech_in_sounds_line({"speech_in_sounds": {**heard, "plays": 0, "share_at_threshold": None}}) == []


def test_card_names_the_recordings_evaluated_beside_the_shared_data_and_nothing_without_them():
    from export.model_card import recordings_of, recordings_row, sources_line

    home = str(Path.home())
    both = {"data": ["/work/shared/data", f"{home}/rec/cuckoo", "/srv/doorbell/manifest.csv"]}
    assert recordings_of(both) == ["~/rec/cuckoo", "/srv/doorbell/manifest.csv"]
    assert recordings_row(recordings_of(both)) == [(
        "| your recordings (`~/rec/cuckoo`, `/srv/doorbell/manifest.csv`, the recipe's `recordings:`) | as labelled "
        "| yours |")]
    for older in ({"data": "/work/shared/data"}, {"data": ["/work/shared/data"]}, {}):  # one folder, or before
        assert recordings_of(older) == [] and recordings_row([]) == []
    tags = {"top1_by_source": {"tags/esc50": {"clips": 89, "top1_accuracy": 0.5197},
                               "tags/cuckoo": {"clips": 93, "top1_accuracy": 1.0}}}
    assert sources_line(tags, ["~/rec/cuckoo"]) == [(
        "- Tags top-1 by folder (the line above pools yours with the shared data's): `tags/esc50` 52.0% of 89, "
        "`tags/cuckoo` 100.0% of 93.")]
    assert sources_line(tags, []) == [] and sources_line({}, ["~/rec/cuckoo"]) == []


def test_alarm_point_with_music_keeps_the_false_start_limit_on_both():
    from export.model_card import alarm_point

    def rows(starts_per_h, detected):
        return [{"threshold": t, "off_threshold": t / 2, "detected_pct": d, "segments_per_group": 1.0,
                 "false_starts_per_h": f} for t, f, d in zip((0.5, 0.6, 0.7), starts_per_h, detected)]

    alarms = {"table": rows((1.0, 0.0, 0.0), (90.0, 80.0, 60.0)), "best_within_2_false_starts_per_h": "as evaluated"}
    assert alarm_point(alarms) == "as evaluated"
    assert alarm_point(alarms, {"table": rows((9.0, 1.5, 0.0), (50.0, 40.0, 30.0))})["threshold"] == 0.6
    assert alarm_point(alarms, {"table": rows((9.0, 9.0, 9.0), (50.0, 40.0, 30.0))}) is None


def test_squeak_section_lists_false_starts_and_marks_the_operating_point():
    from export.model_card import squeak_section

    table = [{"threshold": t, "false_starts": n} for t, n in ((0.3, 40), (0.5, 20), (0.7, 9), (0.9, 2), (0.95, 1))]
    lines = squeak_section({"table": table, "negative_hours": 0.1667, "negative_clips": 120}, {"threshold": 0.7})
    assert "120 held-out squeak clips (10 min" in lines[2]
    assert [line for line in lines if line.startswith("| 0.")] == [
        "| 0.5 | 20 |", "| 0.7 (operating point) | 9 |", "| 0.9 | 2 |"]
    assert "(operating point)" not in "\n".join(squeak_section({"table": table, "negative_hours": 0.1, "negative_clips": 1}, None))
    low = squeak_section({"table": table, "negative_hours": 0.1, "negative_clips": 1}, {"threshold": 0.3})
    assert [line for line in low if line.startswith("| 0.")][:2] == ["| 0.3 (operating point) | 40 |", "| 0.5 | 20 |"]


def test_talk_section_shows_config_thresholds_and_the_wake_words_quiet_point():
    from export.model_card import talk_section

    def rows(fa_per_h: dict, frr: dict | None = None):
        return [{"threshold": t, "false_accepts": round(f * 0.8), "fa_per_h": f, "frr_pct": (frr or {}).get(t)}
                for t, f in fa_per_h.items()]

    talk = {"negative_hours": 0.8, "keywords": {
        "go": {"table": rows({0.5: 5.0, 0.7: 1.25, 0.9: 0.0})},
        "computer": {"table": rows({0.8: 10.0, 0.9: 2.5, 0.97: 0.0, 0.99: 0.0})},
    }}
    wake = {"keywords": {"computer": {"table": rows({0.8: 0.0, 0.9: 0.0, 0.97: 0.0, 0.99: 0.0},
                                                    {0.8: 0.0, 0.9: 0.0, 0.97: 9.1, 0.99: 27.3})}}}
    lines = talk_section(talk, {"go": 0.7, "computer": 0.9}, wake)
    assert "0.80 h of held-out synthetic talk" in lines[2]
    assert [line for line in lines if line.startswith("| go") or line.startswith("| computer")] == [
        "| go | 0.7 | 1 | 1.25 |", "| computer | 0.9 | 2 | 2.50 |"]
    assert lines[-2] == ("`computer` stays within 0.5 false accepts per hour of the talk from threshold 0.97 up; "
                         "there it misses 9.1% of its validation positives.")
    loud = {"negative_hours": 0.8, "keywords": {"computer": {"table": rows({0.9: 5.0, 0.99: 1.0})}}}
    assert talk_section(loud, {"computer": 0.9}, wake)[-2] == (
        "`computer` passes 0.5 false accepts per hour of the talk at every threshold swept.")


def test_a_card_without_a_training_run_says_so_and_a_history_gives_the_curve():
    from export.model_card import validation_curve

    assert validation_curve([]) == [
        "No validation curve: the file was carded without its training run's `history.jsonl`."]
    rows = validation_curve([{"step": 500, "val_loss": 2.5, "keyword_acc": 0.5, "keyword_false_alarm_rate": 0.061,
                              "tag_top1": 0.3125}])
    assert rows[-1] == "| 500 | 2.5 | 50.0% | 6.1% | 31.2% |" and rows[2].startswith("| step |")


def test_a_shipped_cards_curve_comes_back_for_re_carding():
    from export.model_card import history_from_card, validation_curve

    shipped = (Path(__file__).resolve().parents[1] / "models" / "streamd-dscnn.md").read_text()
    history = history_from_card(shipped)
    assert len(history) >= 5 and history[0]["step"] == 10000  # the run's curve, long gone from runs/
    curve = validation_curve(history)
    assert "\n".join(curve) in shipped  # rendered back exactly as the card shows it
    assert history_from_card("\n".join(validation_curve([{"step": 5, "val_loss": 1.0, "keyword_acc": None,
                                                            "keyword_false_alarm_rate": 0.25, "tag_top1": 0.5}]))) \
        == [{"step": 5, "val_loss": 1.0, "keyword_acc": None, "keyword_false_alarm_rate": 0.25, "tag_top1": 0.5}]
    assert history_from_card("# a card\n\nNo validation curve: ...") == []


def test_an_export_that_fails_its_parity_check_leaves_the_old_file(tmp_path):
    from export.onnx_export import export_and_check, model_info

    size, overrides = TINY["sat"]
    torch.manual_seed(0)
    model = build_model("sat", LABELS, size, **overrides).eval()
    path = tmp_path / "shipped.onnx"
    export_and_check(model, path, model_info(model))
    shipped = path.read_bytes()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)  # another model, which must not replace the shipped one unless it passes
    with pytest.raises(AssertionError, match="nothing written"):
        export_and_check(model, path, model_info(model), tolerance=-1.0)  # no model passes a negative tolerance
    assert path.read_bytes() == shipped and sorted(p.name for p in tmp_path.iterdir()) == ["shipped.onnx"]
    export_and_check(model, path, model_info(model))
    assert path.read_bytes() != shipped and sorted(p.name for p in tmp_path.iterdir()) == ["shipped.onnx"]


def test_remove_dc_front_end_ignores_an_offset_in_torch_and_in_the_export(tmp_path):
    from export.frontend import FrontEnd, FrontEndConfig
    from export.onnx_export import export_and_check, model_info

    x = torch.from_numpy(audio(2.0))[None]
    plain, no_dc = FrontEnd(FrontEndConfig()), FrontEnd(FrontEndConfig(remove_dc=True))
    with torch.no_grad():
        assert (plain.raw(x + 0.1) - plain.raw(x)).abs()[..., :3].max() > 1.0  # an offset floods the lowest bands
        assert torch.allclose(no_dc.raw(x + 0.1), no_dc.raw(x), atol=1e-3)
        # away from the lowest bands the frame mean barely matters: a trained model keeps its features
        assert torch.allclose(no_dc.raw(x)[..., 4:], plain.raw(x)[..., 4:], atol=0.05)
    # the export's zero-mean DFT kernels are the same sum as removing the mean first
    size, overrides = TINY["sat"]
    torch.manual_seed(0)
    model = build_model("sat", LABELS, size, frontend={"remove_dc": True}, **overrides).eval()
    path = tmp_path / "no_dc.onnx"
    reports = export_and_check(model, path, model_info(model))  # parity with torch at every hop, or it raises
    assert max(r.max_abs_score_diff for r in reports) < 1e-4
    loaded = load_model(path)

    def streamed(signal):
        state, out = loaded.new_state(), []
        for hop in signal[: len(signal) // 2560 * 2560].reshape(-1, 2560):
            scores, state = loaded.step(hop, state)
            out.append(scores)
        return np.stack(out)

    signal = audio(3.0)
    # the stream's first frame holds the zero carry and the offset signal: a step, not an offset; hops past
    # the receptive field (2 layers x 3 cached columns + 1) no longer see it
    np.testing.assert_allclose(streamed(signal + np.float32(0.1))[7:], streamed(signal)[7:], atol=1e-4)
