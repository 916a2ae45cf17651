"""Wake-word arming: a command counts only just after its wake word's event, once per event; the
scheduler applies it and the evaluation's hop-by-hop version gives the same events; the config checks
that a wake word can wake its followers."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_decisions_fast import HOP, SR, Label, scripted_run  # noqa: E402

from export.evaluation.decisions import armed_detections  # noqa: E402
from streamd.arming import WakeArming  # noqa: E402
from streamd.config import ConfigError, KeywordDefaults, check_against_models, config_from_dict  # noqa: E402
from streamd.contract import KIND_KEYWORD  # noqa: E402
from streamd.triggers import KeywordTriggerConfig  # noqa: E402


def test_a_follower_opens_after_its_wake_word_within_after_s_and_once():
    arming = WakeArming(["computer", "stop", "go"], [None, "computer", "computer"], [0, 500, 1000])
    assert arming.open(100).tolist() == [True, False, False]  # no wake word yet
    arming.fired(0, 1000)
    assert arming.open(1000).tolist() == [True, False, False]  # the wake word's own hop: not after it
    assert arming.open(1100).tolist() == [True, True, True]
    assert arming.open(1500).tolist() == [True, True, True]
    assert arming.open(1501).tolist() == [True, False, True]  # stop's 500 samples are over, go's are not
    arming.fired(2, 1600)  # go fired: one command per wake word
    assert arming.open(1700).tolist() == [True, False, False]
    arming.fired(0, 3000)  # the wake word again
    assert arming.open(3100).tolist() == [True, True, True]
    arming.reset()
    assert arming.open(3200).tolist() == [True, False, False]


def test_a_wake_word_that_is_not_running_never_opens_its_followers():
    arming = WakeArming(["stop", "yes"], ["computer", None], [1000, 0])  # computer disabled: no trigger
    arming.fired(1, 100)
    assert arming.open(200).tolist() == [False, True]
    assert not WakeArming(["stop"], [None], [0]).any


LABELS = [Label("computer", KIND_KEYWORD), Label("stop", KIND_KEYWORD)]


def commands_table(n: int, wake_at: list[int], stop_at: list[int]) -> np.ndarray:
    table = np.zeros((n, 2), np.float32)
    table[wake_at, 0] = 0.9
    table[stop_at, 1] = 0.9
    return table


def settings(after: str | None, after_s: float = 1.0) -> dict:
    armed = KeywordDefaults(0.5, (1, 1), 0.0, speech_gate=0.0, pause_before=0.0, after=after, after_s=after_s)
    return {"computer": (armed, True), "stop": (armed, True)}  # computer never waits for itself


def test_scheduler_fires_a_command_only_just_after_the_wake_word():
    # 100 ms hops, after_s 1 s = 10 hops. stop at hop 5 (no wake word yet); computer at 20; stop at 20 (its
    # own hop), 25 (heard), 27 (the window was used by 25), 45 (computer again at 40), 80 (too late after 60)
    table = commands_table(100, [20, 40, 60], [5, 20, 25, 27, 45, 80])
    events = scripted_run(table, LABELS, settings("computer"), {})
    assert [(e[1] // HOP, e[2]) for e in events] == [
        (21, "computer"), (26, "stop"), (41, "computer"), (46, "stop"), (61, "computer")]
    alone = scripted_run(table, LABELS, settings(None), {})
    assert [e[1] // HOP for e in alone if e[2] == "stop"] == [6, 21, 26, 28, 46, 81]
    longer = scripted_run(table, LABELS, settings("computer", after_s=2.1), {})
    assert [e[1] // HOP for e in longer if e[2] == "stop"] == [26, 46, 81]


def test_a_reconfigured_threshold_keeps_an_open_window():
    # computer at 20 opens the window; at 22 stop's threshold changes (streamd ctl set_threshold); stop at 25
    table = commands_table(40, [20], [25])
    table[25, 1] = 0.7
    changed = settings("computer")
    changed["stop"] = (dataclasses.replace(changed["stop"][0], threshold=0.6), True)
    events = scripted_run(table, LABELS, settings("computer"), {}, reconfigure_at=22, reconfigured=(changed, {}))
    assert [(e[1] // HOP, e[2]) for e in events] == [(21, "computer"), (26, "stop")]


def test_a_disabled_wake_word_silences_its_followers(caplog):
    table = commands_table(40, [10], [15])
    keywords = settings("computer")
    keywords["computer"] = (keywords["computer"][0], False)
    assert scripted_run(table, LABELS, keywords, {}) == []
    assert "stop waits for the wake word computer, which is disabled" in caplog.text


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_evaluations_armed_detections_are_the_schedulers_events(seed):
    rng = np.random.default_rng(seed)
    table = (rng.uniform(0, 1, (400, 2)) ** 6).astype(np.float32)  # rare high scores
    keywords = settings("computer", after_s=0.8)
    events = scripted_run(table, LABELS, keywords, {})
    cfgs = {name: KeywordTriggerConfig(0.5, (1, 1), 0.0) for name in ("computer", "stop")}
    arming = WakeArming(["computer", "stop"], [None, "computer"], [round(0.8 * SR)] * 2)
    ends = (np.arange(len(table)) + 1) * HOP
    fired = armed_detections({"computer": table[:, 0], "stop": table[:, 1]}, ends, cfgs, arming, SR)
    for name in ("computer", "stop"):
        assert fired[name] == [e[1] for e in events if e[2] == name]
    assert 3 <= len(fired["stop"]) < (table[:, 1] >= 0.5).sum()  # some commands heard, others not armed


@pytest.mark.parametrize("seed", [0, 1])
def test_the_evaluations_service_keywords_give_the_schedulers_events_with_gates_and_arming(seed):
    from export.evaluation.decisions import ServiceKeywords
    from export.evaluation.streaming import Scored
    from streamd.contract import KIND_TAG

    rng = np.random.default_rng(seed)
    labels = [*LABELS, Label("speech", KIND_TAG)]
    table = np.stack([rng.uniform(0, 1, 600) ** 6, rng.uniform(0, 1, 600) ** 6, rng.uniform(0, 1, 600)],
                     axis=1).astype(np.float32)
    gated = KeywordDefaults(0.5, (1, 1), 0.3, speech_gate=0.5, speech_gate_s=0.5, pause_before=0.3,
                            pause_before_s=(0.2, 0.6), after="computer", after_s=1.0)
    keywords = {"computer": (gated, True), "stop": (gated, True)}
    events = scripted_run(table, labels, keywords, {})  # silence: every hop at -100 dB
    scored = Scored(table, (np.arange(len(table)) + 1) * HOP, np.full(len(table), -100.0))
    fired = ServiceKeywords({k: s for k, (s, _) in keywords.items()}, [lb.name for lb in labels], HOP, SR).fired(scored)
    for name in ("computer", "stop"):
        assert fired[name] == [e[1] for e in events if e[2] == name]
    assert len(fired["computer"]) >= 5 and len(fired["stop"]) >= 1


def config(keyword_defaults: dict, keywords: list[dict]):
    return config_from_dict({"keyword_defaults": keyword_defaults, "keywords": keywords})


def test_the_defaults_arm_every_keyword_but_the_wake_word_itself():
    got = config({"after": "computer", "after_s": 4}, [{"name": "computer"}, {"name": "stop"},
                                                       {"name": "go", "after": ""}, {"name": "on", "after_s": 2}])
    waits = {name: (s.wake_word(name), s.after_s) for name, (s, _) in got.keyword_settings().items()}
    assert waits == {"computer": (None, 4.0), "stop": ("computer", 4.0), "go": (None, 4.0), "on": ("computer", 2.0)}
    assert KeywordDefaults().wake_word("stop") is None  # off unless a config asks


@pytest.mark.parametrize("keyword_defaults, keywords, message", [
    ({}, [{"name": "stop", "after": "computer"}],
     "keywords[0].after: got 'computer', expected the name of a keyword listed under keywords"),
    ({"after": "computer"}, [{"name": "stop"}],
     "keyword_defaults.after (for keywords[0]): got 'computer', expected the name of a keyword listed"),
    ({}, [{"name": "stop", "after": "computer"}, {"name": "computer", "after": "stop"}],
     "keywords[0].after: got 'computer', which itself waits for 'stop'"),
    ({}, [{"name": "stop", "after_s": 0}], "keywords[0].after_s: got 0"),
])
def test_a_wake_word_that_cannot_wake_its_followers_is_a_config_error(keyword_defaults, keywords, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
                       .replace(")", r"\)")):
        config(keyword_defaults, keywords)


def test_a_wake_word_from_another_model_is_a_config_error():
    class Info:
        def __init__(self, names):
            self.names = names
            self.sample_rate_hz = 16000
            self.hop_samples = [2560]

        def names_of_kind(self, kind):
            return self.names if kind == KIND_KEYWORD else []

        def hop_ms(self, hop):
            return 160.0

    raw = {"models": [{"path": "a.onnx"}, {"path": "b.onnx"}],
           "keywords": [{"name": "computer"}, {"name": "stop", "after": "computer"}]}
    cfg = config_from_dict(raw)
    check_against_models(cfg, {"a": Info(["computer", "stop"]), "b": Info(["yes"])})  # together: fine
    with pytest.raises(ConfigError, match=r"keywords\[1\] \(stop\): waits for 'computer', expected a keyword of the "
                                          r"same model \(b, b.onnx\)"):
        check_against_models(cfg, {"a": Info(["computer"]), "b": Info(["stop"])})


REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CLIPS = {"stop": "kws/gsc_v2/stop/7dc95912_nohash_0.flac", "computer":
         "kws/precise/computer/computer-en-68cc501c-5be7-4e5a-a694-94f138b5056b.flac",
         "stop again": "kws/gsc_v2/stop/3f170018_nohash_0.flac"}  # validation clips: never trained on


@pytest.mark.skipif(not (SHARED_DATA / CLIPS["stop"]).exists(), reason="needs ../shared/data (present in CI)")
def test_the_shipped_model_hears_stop_only_after_computer(tmp_path):
    """streamd scan with the shipped model and config.yaml, all keywords after `computer`, over real recordings:
    "stop", a pause, "computer", "stop"; only the second stop counts. The shipped config alone hears both, and
    `computer` once: its score stays high for 1.6 s, past the pause gate's window, which once split it in two."""
    import soundfile
    import yaml

    parts = []
    for name, pause_s in (("stop", 1.5), ("computer", 0.5), ("stop again", 1.0)):
        audio, rate = soundfile.read(SHARED_DATA / CLIPS[name], dtype="float32")
        parts += [audio, np.zeros(round(pause_s * rate), np.float32)]
    wav = tmp_path / "stop-computer-stop.wav"
    soundfile.write(wav, np.concatenate([np.zeros(rate // 2, np.float32), *parts]), rate)
    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    for model in raw["models"]:
        model["path"] = str(REPO / model["path"])

    def keywords(after: str | None) -> list[str]:
        raw["keyword_defaults"]["after"] = after
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(raw))
        out = subprocess.run([sys.executable, "-m", "streamd.cli", "scan", "--config", str(config), "--json", str(wav)],
                             capture_output=True, text=True, timeout=120, check=True).stdout
        return [e["keyword"] for e in map(json.loads, out.splitlines()) if e["type"] == "keyword"]

    assert keywords(None) == ["stop", "computer", "stop"]
    assert keywords("computer") == ["computer", "stop"]
