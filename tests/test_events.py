"""Event JSON pinned byte for byte; topics; sequence numbers."""

import json

import pytest

from streamd.events import (SCHEMA_VERSION, KeywordEvent, ScoresEvent, Sequencer, StatusEvent, TagEndEvent,
                            TagStartEvent, encode)

T = 1732200000.123456


def test_keyword_event_is_pinned():
    event = KeywordEvent("mic", 48000, 16000, "streamd-sat", "yes", 0.934567)
    assert encode(event, 7, T) == (
        b"keyword.yes",
        b'{"schema":1,"type":"keyword","seq":7,"time":1732200000.123,"stream":"mic","position_samples":48000,'
        b'"position_s":3.0,"model":"streamd-sat","keyword":"yes","score":0.9346}',
    )


def test_tag_events_are_pinned():
    start = TagStartEvent("mic", 20480, 16000, "streamd-sat", "dog", 15360, 0.96, 0.81234)
    end = TagEndEvent("mic", 40960, 16000, "streamd-sat", "dog", 15360, 0.96, 1.6, 0.91, 0.7, "off")
    assert encode(start, 0, T) == (
        b"tag.start.dog",
        b'{"schema":1,"type":"tag_start","seq":0,"time":1732200000.123,"stream":"mic","position_samples":20480,'
        b'"position_s":1.28,"model":"streamd-sat","tag":"dog","start_samples":15360,"start_s":0.96,'
        b'"peak_score":0.8123}',
    )
    assert encode(end, 1, T) == (
        b"tag.end.dog",
        b'{"schema":1,"type":"tag_end","seq":1,"time":1732200000.123,"stream":"mic","position_samples":40960,'
        b'"position_s":2.56,"model":"streamd-sat","tag":"dog","start_samples":15360,"start_s":0.96,'
        b'"duration_s":1.6,"peak_score":0.91,"mean_score":0.7,"reason":"off"}',
    )


def test_scores_and_status_are_pinned():
    scores = ScoresEvent("mic", 2560, 16000, "m", 2560, {"yes": 0.123456, "dog": 0.5})
    status = StatusEvent(None, None, None, "running", "heartbeat", {"uptime_s": 30.0})
    assert encode(scores, 2, T)[1] == (
        b'{"schema":1,"type":"scores","seq":2,"time":1732200000.123,"stream":"mic","position_samples":2560,'
        b'"position_s":0.16,"model":"m","hop_samples":2560,"scores":{"yes":0.1235,"dog":0.5}}'
    )
    assert encode(status, 3, T) == (
        b"status",
        b'{"schema":1,"type":"status","seq":3,"time":1732200000.123,"stream":null,"position_samples":null,'
        b'"position_s":null,"state":"running","message":"heartbeat","detail":{"uptime_s":30.0}}',
    )


def test_every_event_has_the_header_in_order():
    events = [
        KeywordEvent("a", 1, 16000, "m", "no", 0.5),
        TagStartEvent("a", 1, 16000, "m", "cat", 0, 0.0, 0.5),
        TagEndEvent("a", 1, 16000, "m", "cat", 0, 0.0, 0.1, 0.5, 0.5, "off"),
        ScoresEvent("a", 1, 16000, "m", 1, {}),
        StatusEvent("a", 1, 16000, "lag_skip", "x"),
    ]
    for event in events:
        obj = json.loads(encode(event, 0, T)[1])
        assert list(obj)[:7] == ["schema", "type", "seq", "time", "stream", "position_samples", "position_s"]
        assert obj["schema"] == SCHEMA_VERSION


def test_sequencer_counts_every_event():
    seq = Sequencer(clock=lambda: 5.0)
    frames = [seq.encode(KeywordEvent("mic", i, 16000, "m", "go", 0.9)) for i in range(3)]
    assert [json.loads(body)["seq"] for _, body in frames] == [0, 1, 2]
    assert {json.loads(body)["time"] for _, body in frames} == {5.0}


def test_nan_score_is_refused_not_sent():
    with pytest.raises(ValueError):
        encode(KeywordEvent("mic", 1, 16000, "m", "go", float("nan")), 0, T)
