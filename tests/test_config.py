"""Strict config loading: every kind of error names its dotted path, the value and what was expected."""

from pathlib import Path

import pytest

from streamd.config import (Config, ConfigError, KeywordDefaults, bus_endpoint, check_against_models, config_from_dict,
                            hop_samples_for_latency, idle_clip_warning, load_config)
from streamd.contract import KIND_KEYWORD, KIND_TAG, Label, ModelInfo

REPO = Path(__file__).resolve().parents[1]

INFO = ModelInfo(16000, (1600, 3200), (Label("yes", KIND_KEYWORD), Label("dog", KIND_TAG)), "tiny", 0.25,
                 licence="x")


def error_of(raw) -> str:
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw, source="c.yaml")
    message = str(err.value)
    assert "\n" not in message
    return message


ERRORS = [
    # (raw config, substrings the one-line message must contain)
    ({"bus": {"hwm": 5}}, ["c.yaml: bus.hwm: unknown key", "high_water_mark"]),
    ({"colour": 1}, ["colour: unknown key"]),
    ({"bus": {"high_water_mark": "lots"}}, ["bus.high_water_mark: got 'lots', expected an integer"]),
    ({"bus": {"high_water_mark": 0}}, ["bus.high_water_mark: got 0, expected a value in [1, "]),
    ({"bus": {"scores": "yes"}}, ["bus.scores: got 'yes', expected true/false"]),
    ({"keywords": [{"name": True}]}, ["keywords[0].name: got True, expected a string", 'quote it']),
    ({"keywords": [{"name": "yes", "threshold": 1.2}]}, ["keywords[0].threshold: got 1.2, expected a value in [0.0, 1.0]"]),
    ({"keywords": [{"name": "yes", "n_of_m": [3, 2]}]}, ["keywords[0].n_of_m: got [3, 2], expected [N, M]"]),
    ({"keywords": [{"name": "yes", "n_of_m": [1]}]}, ["keywords[0].n_of_m: got [1], expected a list of 2 integers"]),
    ({"keywords": [{"name": "up", "pause_before_s": [1.0, 0.5]}]},
     ["keywords[0].pause_before_s: got [1.0, 0.5], expected [FROM, TO] seconds with 0 <= FROM <= TO <= 10"]),
    ({"keyword_defaults": {"pause_before_s": 0.5}}, ["keyword_defaults.pause_before_s: got 0.5, expected a list of 2 numbers"]),
    ({"keyword_defaults": {"pause_before": 2}}, ["keyword_defaults.pause_before: got 2.0, expected a value in [0.0, 1.0]"]),
    ({"keywords": [{"name": "yes"}, {"name": "yes"}]}, ["keywords[1].name: got 'yes' again"]),
    ({"keywords": {"name": "yes"}}, ["keywords: got {'name': 'yes'}, expected a list of a mapping"]),
    ({"tags": [{"name": "dog", "method": "max"}]}, ["tags[0].method: got 'max', expected one of mean, median"]),
    ({"tags": [{"name": "dog", "on_threshold": 0.2}]}, ["tags[0] (dog): off_threshold 0.3 exceeds on_threshold 0.2"]),
    ({"tag_defaults": {"max_event_s": 0}}, ["tag_defaults.max_event_s: got 0.0, expected a value > 0.0"]),
    ({"tags": [{"name": "dog", "hold_s": -1}]}, ["tags[0].hold_s: got -1.0, expected a value in [0.0, 3600.0]"]),
    ({"tags": [{"name": "dog", "clip": "yes"}]}, ["tags[0].clip: got 'yes', expected true/false or null"]),
    ({"tag_defaults": {"window_s": 0}}, ["tag_defaults.window_s: got 0.0, expected a value > 0.0"]),
    ({"tag_defaults": {"window_hops": 3, "window_s": 0.5}},
     ["tag_defaults: got window_hops 3 and window_s 0.5, expected one of them (hops or seconds)"]),
    ({"tags": [{"name": "dog", "window_hops": 2, "window_s": 0.5}]}, ["tags[0]: got window_hops 2 and window_s 0.5"]),
    ({"models": [{"path": "m.onnx", "latency_ms": -5}]}, ["models[0].latency_ms: got -5.0, expected a value > 0"]),
    ({"models": []}, ["models: got [], expected at least one model"]),
    ({"inputs": [{"source": "mike"}]}, ["inputs[0].source: got 'mike', expected \"mic\", \"stdin\" or \"file:PATH\""]),
    ({"inputs": [{"device": 1.5}]}, ["inputs[0].device: got 1.5, expected a string or an integer or null"]),
    ({"inputs": [{"channels": [-1]}]}, ["inputs[0].channels: got [-1]"]),
    ({"inputs": [{"block_ms": 500}]}, ["inputs[0].block_ms: got 500.0, expected a value in [2.0, 100.0]"]),
    ({"bus": {"endpoint": "tcp://0.0.0.0:5555"}}, ["bus.endpoint: got 'tcp://0.0.0.0:5555'", "bus.allow_network: true"]),
    ({"control": {"endpoint": "tcp://192.168.1.4:5555"}}, ["control.endpoint", "control.allow_network: true"]),
    ({"bus": {"endpoint": "http://x"}}, ["bus.endpoint: got 'http://x', expected ipc://PATH or tcp://HOST:PORT"]),
    ({"scheduler": {"max_lag_s": 20}}, ["scheduler.max_lag_s: got 20.0, expected less than scheduler.ring_s"]),
    ({"logging": {"level": "LOUD"}}, ["logging.level: got 'LOUD', expected one of DEBUG"]),
    ([1, 2], ["<top>: got [1, 2], expected a mapping"]),
    ({"keyword_defaults": {"threshold": float("nan")}}, ["keyword_defaults.threshold: got nan, expected a finite number"]),
    ({"inputs": [{"name": ""}]}, ["inputs[0].name: got '', expected a non-empty name"]),
    ({"bus": {"a\nb": 1}}, ["bus.'a\\nb': unknown key"]),
]


@pytest.mark.parametrize("raw,parts", ERRORS, ids=[p[0] for _, p in ERRORS])
def test_error_names_path_value_and_expectation(raw, parts):
    message = error_of(raw)
    for part in parts:
        assert part in message


def test_network_endpoints_need_allow_network():
    ok = config_from_dict({"bus": {"endpoint": "tcp://0.0.0.0:5555", "allow_network": True},
                           "control": {"endpoint": "tcp://127.0.0.1:5556"}})
    assert ok.bus.endpoint == "tcp://0.0.0.0:5555"


def test_defaults_are_a_working_config():
    config = config_from_dict({})
    assert config.inputs[0].source == "mic" and config.models[0].path == "models/streamd-sat.onnx"
    assert config.clips.enabled is False and config.bus.allow_network is False
    assert bus_endpoint(config).startswith("ipc://") and bus_endpoint(config).endswith("/events")


def test_keyword_fields_fall_back_to_defaults():
    config = config_from_dict({"keyword_defaults": {"threshold": 0.6, "n_of_m": [2, 3]},
                               "keywords": [{"name": "yes"}, {"name": "no", "threshold": 0.8, "enabled": False}]})
    settings = config.keyword_settings()
    assert settings["yes"] == (KeywordDefaults(0.6, (2, 3), 1.0), True)
    assert settings["no"] == (KeywordDefaults(0.8, (2, 3), 1.0), False)


def test_a_keyword_takes_the_pause_gate_from_the_defaults_or_its_own():
    config = config_from_dict({"keyword_defaults": {"pause_before": 0.5, "pause_before_s": [0.2, 1.0]},
                               "keywords": [{"name": "up"}, {"name": "computer", "pause_before": 0},
                                            {"name": "go", "pause_before_s": [0.5, 2]}]})
    got = {name: (s.pause_before, s.pause_before_s) for name, (s, _) in config.keyword_settings().items()}
    assert got == {"up": (0.5, (0.2, 1.0)), "computer": (0.0, (0.2, 1.0)), "go": (0.5, (0.5, 2.0))}
    assert KeywordDefaults().pause_before == 0.5  # on unless a config turns it off


def test_a_tag_window_in_seconds_or_hops_comes_whole_from_the_tag_or_the_defaults():
    """A tag that sets either window key takes neither from tag_defaults; seconds become the hops that span
    them at each model's hop (rounded up)."""
    def windows(raw, hop_samples):
        settings = config_from_dict(raw).tag_settings()
        return {name: tag.smoother(hop_samples, 16000).window_hops for name, (tag, _) in settings.items()}

    tags = [{"name": "dog"}, {"name": "cat", "window_hops": 5}, {"name": "owl", "window_s": 1.0}]
    assert windows({"tag_defaults": {"window_s": 0.48}, "tags": tags}, 2560) == {"dog": 3, "cat": 5, "owl": 7}
    assert windows({"tag_defaults": {"window_s": 0.48}, "tags": tags}, 7680) == {"dog": 1, "cat": 5, "owl": 3}
    assert windows({"tag_defaults": {"window_hops": 4}, "tags": tags}, 7680) == {"dog": 4, "cat": 5, "owl": 3}
    assert windows({"tags": tags}, 7680) == {"dog": 3, "cat": 5, "owl": 3}  # neither set anywhere: 3 hops


def test_the_shipped_tag_windows():
    """config.yaml's windows: 0.48 s for every tag (3 hops at the default model's 160 ms, 1 at 480 ms), and
    smoke_alarm's 5 hops at either model's hop (0.8 s at 160 ms spans a beep gap; 2.4 s at the detector's
    480 ms sees its held match twice, models/streamd-alarm.md)."""
    settings = load_config(REPO / "config.yaml").tag_settings()
    for hop_samples, dog_hops in ((2560, 3), (7680, 1)):
        assert settings["dog"][0].smoother(hop_samples, 16000).window_hops == dog_hops
        assert settings["smoke_alarm"][0].smoother(hop_samples, 16000).window_hops == 5


def test_a_tag_holds_from_the_defaults_or_its_own_as_shipped():
    """hold_s reaches the smoother from tag_defaults or the tag; config.yaml holds every tag 2 s (one sound, one
    event: scripts/tag_fragments.py) and smoke_alarm 6 s (longer than the models' longest gap between an alarm's
    beep groups, ~4.8 s)."""
    raw = {"tag_defaults": {"hold_s": 1.5}, "tags": [{"name": "dog"}, {"name": "cat", "hold_s": 0.0}]}
    settings = config_from_dict(raw).tag_settings()
    assert {name: tag.smoother(2560, 16000).hold_s for name, (tag, _) in settings.items()} == {"dog": 1.5, "cat": 0.0}
    shipped = load_config(REPO / "config.yaml").tag_settings()
    assert {name: tag.hold_s for name, (tag, _) in shipped.items() if tag.hold_s != 2.0} == {"smoke_alarm": 6.0}
    assert len(shipped) == 9


def test_which_events_keep_a_clip_the_entry_says_else_every_keyword_and_a_tag_as_clips_tags():
    """A keyword's or tag's own clip: wins; unset, every keyword keeps one and a tag as clips.tags says; a label
    with no entry (enabled at run time) takes the same default."""
    entries = {"keywords": [{"name": "yes"}, {"name": "no", "clip": False}],
               "tags": [{"name": "dog"}, {"name": "siren", "clip": True}, {"name": "rain", "clip": False}]}
    for tags in (False, True):
        config = config_from_dict({**entries, "clips": {"enabled": True, "tags": tags}})
        kept = {name: config.keeps_clip(kind, name) for kind, name in [
            (KIND_KEYWORD, "yes"), (KIND_KEYWORD, "no"), (KIND_KEYWORD, "up"),
            (KIND_TAG, "dog"), (KIND_TAG, "siren"), (KIND_TAG, "rain"), (KIND_TAG, "cat")]}
        assert kept == {"yes": True, "no": False, "up": True, "dog": tags, "siren": True, "rain": False, "cat": tags}
        assert idle_clip_warning(config) is None


def test_clips_asked_for_while_clips_are_off_are_a_warning_not_an_error():
    config = config_from_dict({"keywords": [{"name": "yes", "clip": True}, {"name": "no", "clip": False}],
                               "tags": [{"name": "dog"}, {"name": "siren", "clip": True}], "clips": {"tags": True}})
    assert idle_clip_warning(config) == ("clips.enabled is false, so keywords[0].clip, tags[1].clip, clips.tags keep "
                                         "no clips")
    assert idle_clip_warning(config_from_dict({"tags": [{"name": "dog", "clip": True}]})) == (
        "clips.enabled is false, so tags[0].clip keeps no clips")
    assert idle_clip_warning(config_from_dict({"tags": [{"name": "dog", "clip": False}]})) is None


def test_load_yaml_resolves_paths_against_the_config_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "c.yaml"
    path.write_text("models:\n  - path: m.onnx\n    latency_ms: 100\n")
    config = load_config(path)
    assert config.resolve(config.models[0].path) == tmp_path / "sub" / "m.onnx"
    assert config.resolve("/abs/m.onnx") == Path("/abs/m.onnx")


def test_yaml_syntax_error_is_one_line_with_position(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("bus:\n  endpoint: [unclosed\n")
    with pytest.raises(ConfigError, match=r"c.yaml: not valid YAML at line \d+, column \d+") as err:
        load_config(path)
    assert "\n" not in str(err.value)


def test_unquoted_yes_in_yaml_is_caught(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("keywords:\n  - {name: yes}\n")
    with pytest.raises(ConfigError, match=r"keywords\[0\].name: got True.*quote it"):
        load_config(path)


def test_cross_check_against_model_labels_and_hops():
    good = config_from_dict({"models": [{"path": "t.onnx", "latency_ms": 200}],
                             "keywords": [{"name": "yes"}], "tags": [{"name": "dog"}]})
    check_against_models(good, {"t": INFO})
    cases = [
        ({"keywords": [{"name": "dog"}]}, "keywords[0].name: got 'dog', expected a keyword label of the loaded model(s): yes"),
        ({"tags": [{"name": "cat"}]}, "tags[0].name: got 'cat', expected a tag label of the loaded model(s): dog"),
        ({"models": [{"path": "t.onnx", "latency_ms": 160}]}, "models[0].latency_ms: got 160, expected one of the model's hops: 100, 200 (ms)"),
    ]
    for raw, message in cases:
        raw.setdefault("models", [{"path": "t.onnx", "latency_ms": 100}])
        with pytest.raises(ConfigError) as err:
            check_against_models(config_from_dict(raw), {"t": INFO})
        assert str(err.value) == message


def test_latency_maps_to_hop_samples():
    assert hop_samples_for_latency(INFO, 100) == 1600
    assert hop_samples_for_latency(INFO, 200.2) == 3200


def test_shipped_config_yaml_loads():
    config = load_config(REPO / "config.yaml")
    assert isinstance(config, Config)
    assert [m.path for m in config.models] == ["models/streamd-sat.onnx", "models/streamd-alarm.onnx"]
    assert {k.name for k in config.keywords} >= {"yes", "no", "computer"}
    assert not config.bus.allow_network and config.bus.endpoint is None


def test_shipped_config_yaml_takes_its_keyword_thresholds_from_the_default_models_card():
    """models/streamd-sat.md derives them with the service's gates (ship.sh evaluates at the defaults, which
    are config.yaml's); `up` alone keeps its own, with its stricter speech gate (docs/service.md)."""
    import yaml

    card = (REPO / "models" / "streamd-sat.md").read_text()
    block = card.split("```yaml\n")[1].split("```")[0]  # the first block: the keywords
    from_card = {kw["name"]: kw["threshold"] for kw in yaml.safe_load(block)}
    config = load_config(REPO / "config.yaml")
    settings = config.keyword_settings()
    assert {name: s.threshold for name, (s, _) in settings.items() if name != "up"} == \
        {name: t for name, t in from_card.items() if name != "up"}
    gate_fields = ("speech_gate", "speech_gate_s", "pause_before", "pause_before_s", "pause_drop_db")
    gates = {tuple(getattr(s, f) for f in gate_fields) for name, (s, _) in settings.items() if name != "up"}
    assert gates == {tuple(getattr(KeywordDefaults(), f) for f in gate_fields)}
    assert ("speech gate 0.5 over 1.28 s, a pause (speech below 0.5 or 10 dB quieter than the word) 0.32-1.28 s "
            "before, as evaluated") in card


def test_shipped_config_yaml_takes_its_tag_thresholds_from_the_default_models_card():
    """The card's tag block (the tags task's on-thresholds, off at 0.6 x on; smoke_alarm from its alarm table)
    is what config.yaml lists, speech's enabled: false and smoke_alarm's hold_s (the service's, not the
    card's) aside."""
    import yaml

    card = (REPO / "models" / "streamd-sat.md").read_text()
    block = card.split("takes these for its tags")[1].split("```yaml\n")[1].split("```")[0]
    from_card = {tag.pop("name"): tag for tag in yaml.safe_load(block)}
    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    in_config = {tag.pop("name"): tag for tag in raw["tags"]}
    in_config["speech"].pop("enabled")
    in_config["smoke_alarm"].pop("hold_s")
    assert in_config == from_card


def test_the_service_loads_each_model_with_its_configured_hop_fixed():
    from streamd.service import load_models

    config = load_config(REPO / "config.yaml")
    specs = load_models(config)
    assert [spec.name for spec in specs] == ["streamd-sat", "streamd-alarm"]
    for spec, entry in zip(specs, config.models):
        assert spec.hop_samples == hop_samples_for_latency(spec.model.info, entry.latency_ms)
        assert spec.model.hop_samples == spec.hop_samples
        audio_input = next(i for i in spec.model.session.get_inputs() if i.name == "audio")
        assert audio_input.shape == [1, spec.hop_samples]
