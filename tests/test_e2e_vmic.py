"""End to end through a real microphone path: `streamd run` on a virtual PulseAudio microphone.

Each live test starts a private PulseAudio daemon whose default source is a null sink's monitor (the
`vmic` fixture), runs `streamd run` on that microphone with the repository's config.yaml (only the
input and the bus/control endpoints changed), subscribes over ZeroMQ and plays audio the test made:
espeak-ng speech and a synthetic temporal-three smoke alarm. A companion test runs the same audio
through `streamd run --source file:X --fast` (no sound server) and expects the same decisions.

Timing on the capture timeline: just before `paplay` starts and just after it returns, the test asks
the control endpoint for the stream position. The played file lies between those two positions, so
the word's end in stream samples is known to within the (small) slack of paplay's start-up and exit.

Run alone: `.venv/bin/python -m pytest tests/test_e2e_vmic.py -q`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml
import zmq

from streamd.control import request

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "streamd-sat.onnx"
STREAMD = [sys.executable, "-m", "streamd.cli"]
RATE_HZ = 16000

# The utterance: of 11 keywords x 7 espeak-ng voices x 2 speeds scored with the shipped model, "computer"
# in this voice scores highest (the sat-music model shipped in session 9: max 1.0 against config.yaml's
# threshold 0.9; no other keyword above 0.21); the command that shows it is in docs/service.md
# ("End-to-end tests").
KEYWORD = "computer"
VOICE = "en-gb-x-rp"
SPEED_WPM = 160
LEAD_S, TAIL_S = 0.5, 1.0  # silence around the word in the played file

# Where the keyword event may sit on the stream, relative to the end of the spoken word: the model may
# be sure before the last phoneme ends, and fires after N of M hops (160 ms each) plus the slack of
# the capture timeline (see the module docstring).
KEYWORD_WINDOW_S = (-0.5, 1.0)
EVENT_AFTER_PAPLAY_S = 1.5  # the keyword event is published within this long after paplay returns
QUIET_AFTER_S = 2.5  # how long we keep listening for a second (wrong) event

# A sounding smoke alarm is one event per model: the 1.5 s pause between temporal-three groups turns the tag
# off for a moment, and config.yaml holds smoke_alarm (hold_s) longer than that. Where the tag's start and
# end may sit relative to the alarm's first beep start and last beep end: smoothing over config.yaml's window
# and the off threshold make the end trail the sound by ~0.5 s; the end is published hold_s after it.
TAG_START_WINDOW_S = (-0.2, 0.6)
TAG_END_WINDOW_S = (-0.3, 1.0)
HOLD_S = 6.0  # config.yaml's smoke_alarm hold_s

ALARM_S = 6.5  # two temporal-three groups: 3 x (0.5 s on, 0.5 s off), 1.5 s off
# config.yaml's second model, the alarm pattern detector: it confirms a whole group after the quiet that
# follows it (about 1.2 s) and its 480 ms hop, then the smoother's minimum duration
DETECTOR = "streamd-alarm"
DETECTOR_CONFIRMS_S = 2.5
DETECTOR_QUIET_S = 1.0  # a group is confirmed no sooner than this after its last beep
STOP_WITHIN_S = 2.0
DEVICE_GONE_S = 1.5  # how long the microphone stays removed

needs_tools = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                                 reason="espeak-ng and sox make the test speech (scripts/setup.sh installs them)")
needs_model = pytest.mark.skipif(not MODEL.exists(), reason=f"{MODEL} is not there (the shipped model)")
pytestmark = [needs_tools, needs_model]


# ------------------------------------------------------------------------------------- test audio


def speech(path: Path, text: str = KEYWORD, voice: str = VOICE, speed_wpm: int = SPEED_WPM) -> tuple[float, float]:
    """espeak-ng -> 16 kHz mono 16-bit WAV with LEAD_S/TAIL_S of silence; returns the word's (start_s, end_s)."""
    raw = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed_wpm), "-w", str(raw), text], check=True,
                   capture_output=True, timeout=30)
    subprocess.run(["sox", str(raw), "-r", str(RATE_HZ), "-c", "1", "-b", "16", str(path), "silence", "1", "0.01", "-60d",
                    "reverse", "silence", "1", "0.01", "-60d", "reverse", "norm", "-3", "pad", str(LEAD_S), str(TAIL_S)],
                   check=True, capture_output=True, timeout=30)
    raw.unlink()
    audio = soundfile.read(path, dtype="float32")[0]
    return LEAD_S, len(audio) / RATE_HZ - TAIL_S


def smoke_alarm(path: Path, seconds: float = ALARM_S, seed: int = 3) -> list[tuple[float, float]]:
    """A synthetic temporal-three smoke alarm with 1 s of silence on each side; returns its beeps (start_s, end_s)."""
    from export.data.synth_alarms import make_alarm  # numpy only: no torch

    alarm = make_alarm("t3", seconds, RATE_HZ, np.random.default_rng(seed))
    audio = np.concatenate([np.zeros(RATE_HZ, np.float32), alarm, np.zeros(RATE_HZ, np.float32)])
    soundfile.write(path, audio, RATE_HZ, subtype="PCM_16")
    frame = RATE_HZ // 100  # 10 ms frames: a beep is where the level is within 20 dB of the peak
    level = np.abs(audio[: len(audio) // frame * frame]).reshape(-1, frame).max(axis=1)
    on = np.concatenate([[False], level > 0.1 * level.max(), [False]])
    edges = np.flatnonzero(np.diff(on.astype(int)))
    return [(a * frame / RATE_HZ, b * frame / RATE_HZ) for a, b in zip(edges[::2], edges[1::2])]


def beep_groups(beeps: list[tuple[float, float]], max_gap_s: float = 1.0) -> list[tuple[float, float]]:
    """Beeps closer than max_gap_s joined: the temporal-three groups (start_s, end_s)."""
    groups = [list(beeps[0])]
    for start, end in beeps[1:]:
        if start - groups[-1][1] < max_gap_s:
            groups[-1][1] = end
        else:
            groups.append([start, end])
    return [tuple(g) for g in groups]


def concat(path: Path, *parts: Path, gap_s: float = 1.0) -> list[float]:
    """Join WAVs with gap_s of silence between them; returns each part's offset (s)."""
    audio, offsets = [], []
    for part in parts:
        offsets.append(sum(len(a) for a in audio) / RATE_HZ)
        audio += [soundfile.read(part, dtype="float32")[0], np.zeros(int(gap_s * RATE_HZ), np.float32)]
    soundfile.write(path, np.concatenate(audio), RATE_HZ, subtype="PCM_16")
    return offsets


# -------------------------------------------------------------------------------- the service


def write_config(d: Path) -> Path:
    """config.yaml as shipped (thresholds and all), with the microphone input and endpoints in d."""
    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    raw["inputs"] = [{"name": "mic", "source": "mic"}]
    raw["bus"]["endpoint"] = f"ipc://{d}/events"
    raw["control"]["endpoint"] = f"ipc://{d}/control"
    for model in raw["models"]:  # relative to the shipped config's folder
        model["path"] = str((REPO / model["path"]).resolve())
    path = d / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


class Service:
    """`streamd run` as a subprocess, a ZeroMQ subscriber on its bus, and its control endpoint."""

    def __init__(self, d: Path, env: dict | None = None, *args: str):
        self.dir = d
        self.events_path = d / "events"
        self.control = f"ipc://{d}/control"
        self.context = zmq.Context()
        self.sub = self.context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.connect(f"ipc://{d}/events")
        self.stderr = open(d / "streamd.stderr", "w")
        self.proc = subprocess.Popen([*STREAMD, "run", "--config", str(write_config(d)), "--wait-for-subscriber", "30",
                                      *args], env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr, text=True)
        self.events: list[dict] = []  # everything received, in order, each with "_received" (time.time())

    def until(self, predicate, timeout_s: float) -> dict:
        """Receive until an event satisfies predicate; return it (everything received is in self.events)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.sub.poll(50):
                event = self._receive()
                if predicate(event):
                    return event
            elif self.proc.poll() is not None:
                raise AssertionError(f"streamd exited ({self.proc.returncode}): {self.log()}")
        raise AssertionError(f"no matching event within {timeout_s} s; received {self.summary()}; log: {self.log()}")

    def collect(self, duration_s: float) -> list[dict]:
        """Everything received during the next duration_s."""
        got, deadline = [], time.monotonic() + duration_s
        while (left := deadline - time.monotonic()) > 0:
            if self.sub.poll(max(1, int(1000 * min(left, 0.05)))):
                got.append(self._receive())
        return got

    def _receive(self) -> dict:
        topic, body = self.sub.recv_multipart()
        event = json.loads(body)
        event["_topic"], event["_received"] = topic.decode(), time.time()
        self.events.append(event)
        return event

    def position_samples(self) -> int:
        return request(self.control, {"cmd": "status"}, timeout_s=10.0)["status"]["streams"]["mic"]["position_samples"]

    def wait_for_mic(self, timeout_s: float = 30.0) -> None:
        """Started, the device open, and samples flowing (an idle null sink can take ~2 s to deliver)."""
        self.until(lambda e: e["type"] == "status" and e["state"] == "device_opened", timeout_s)
        self.wait_for_samples(timeout_s)

    def wait_for_samples(self, timeout_s: float = 30.0) -> None:
        """Half a second of audio more than now."""
        first, deadline = self.position_samples(), time.monotonic() + timeout_s
        while self.position_samples() < first + RATE_HZ // 2:
            assert time.monotonic() < deadline, "no samples from the virtual microphone"
            time.sleep(0.05)

    def play(self, vmic, wav: Path) -> tuple[int, int, float]:
        """paplay the file; (stream position before, stream position after, wall time when paplay returned)."""
        before = self.position_samples()
        vmic.play(wav)
        done_wall = time.time()
        return before, self.position_samples(), done_wall

    def stop(self) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds until exit)."""
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(10)
        return rc, time.monotonic() - sent

    def decisions(self, events: list[dict] | None = None, model: str | None = None) -> list[tuple[str, str]]:
        """(type, keyword or tag) of every event but status, of one model's if model is given."""
        return [(e["type"], e.get("keyword") or e.get("tag")) for e in (self.events if events is None else events)
                if e["type"] != "status" and model in (None, e.get("model"))]

    def summary(self) -> list:
        return [(e["_topic"], e.get("state"), e["position_s"]) for e in self.events]

    def log(self) -> str:
        self.stderr.flush()
        return (self.dir / "streamd.stderr").read_text()[-3000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.sub.close()
        self.context.term()
        self.stderr.close()


@pytest.fixture
def live(vmic, tmp_path):
    service = Service(tmp_path, vmic.env)
    try:
        service.until(lambda e: e["type"] == "status" and e["message"] == "started", 60)
        service.wait_for_mic()
        yield service
    finally:
        service.close()


def _assert_stops_cleanly(service: Service) -> None:
    rc, elapsed_s = service.stop()
    assert rc == 0, service.log()
    assert elapsed_s < STOP_WITHIN_S, f"took {elapsed_s:.2f} s to stop"
    final = service.until(lambda e: e["type"] == "status" and e["state"] == "stopping", 5)
    assert final["message"] == "stopped: SIGTERM"
    assert not service.events_path.exists() and not (service.dir / "control").exists()


def _assert_one_keyword_at_the_word(service: Service, vmic, wav: Path, word_s: tuple[float, float]) -> dict:
    """Play the utterance; exactly one event, for KEYWORD, at the end of the word on the stream."""
    n_before = len(service.events)
    before, after, done_wall = service.play(vmic, wav)
    file_s = soundfile.info(wav).duration
    service.until(lambda e: e["type"] == "keyword", EVENT_AFTER_PAPLAY_S + 10)  # bounded; checked below
    service.collect(QUIET_AFTER_S)
    keywords = [e for e in service.events[n_before:] if e["type"] == "keyword"]
    assert [e["keyword"] for e in keywords] == [KEYWORD], service.summary()
    event = keywords[0]
    # The file went out between `before` and `after`: its start is at or after `before`, its end at or
    # before `after` (both positions are samples captured, i.e. the same timeline as the event's).
    earliest_end_s = before / RATE_HZ + word_s[1]
    latest_end_s = after / RATE_HZ - (file_s - word_s[1])
    assert earliest_end_s <= latest_end_s + 0.2, (before, after, file_s)  # the bracket itself is sane
    low, high = earliest_end_s + KEYWORD_WINDOW_S[0], latest_end_s + KEYWORD_WINDOW_S[1]
    assert low <= event["position_s"] <= high, (
        f"keyword at {event['position_s']:.2f} s on the stream; word ended in [{earliest_end_s:.2f}, {latest_end_s:.2f}] s")
    assert event["time"] - done_wall < EVENT_AFTER_PAPLAY_S, f"published {event['time'] - done_wall:.2f} s after paplay"
    assert event["stream"] == "mic" and event["score"] >= _threshold(KEYWORD)
    return event


def _assert_pattern_detector_heard_whole_groups(service: "Service", events: list[dict], beeps: list[tuple[float, float]],
                                                first_s: float, last_s: float) -> None:
    """The alarm pattern detector of config.yaml starts smoke_alarm once for the alarm, after the last beep
    of its first temporal-three group that has all three beeps and within DETECTOR_CONFIRMS_S of it (a group
    the file holds only part of starts nothing), and holds it on through every later whole group: its last
    hop on comes after the last whole group's confirmation. first_s..last_s: where the file starts on the
    stream."""
    whole = _whole_groups(beeps)
    one_event = [("tag_start", "smoke_alarm"), ("tag_end", "smoke_alarm")]
    assert whole and service.decisions(events, model=DETECTOR) == one_event, (service.summary(), whole)
    start, end = [e for e in events if e["type"] in ("tag_start", "tag_end") and e["model"] == DETECTOR]
    assert first_s + whole[0][1] <= start["position_s"] <= last_s + whole[0][1] + DETECTOR_CONFIRMS_S, (start, whole)
    assert end["start_s"] + end["duration_s"] >= first_s + whole[-1][1] + DETECTOR_QUIET_S, (end, whole)


def _whole_groups(beeps: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(start_s, end_s) of each temporal-three group that has all three of its beeps."""
    return [g for g in beep_groups(beeps) if sum(g[0] <= a and b <= g[1] for a, b in beeps) == 3]


def _threshold(keyword: str) -> float:
    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    own = next(k for k in raw["keywords"] if str(k["name"]) == keyword)
    return own.get("threshold", raw["keyword_defaults"]["threshold"])


# ------------------------------------------------------------------------------------- the tests


def test_spoken_keyword_gives_one_event_at_the_word_then_sigterm_exits_0(live, vmic, tmp_path):
    wav = tmp_path / "utterance.wav"
    word_s = speech(wav)
    assert live.decisions() == [], "events before anything was played"
    _assert_one_keyword_at_the_word(live, vmic, wav, word_s)
    _assert_stops_cleanly(live)
    assert live.decisions() == [("keyword", KEYWORD)]


def test_smoke_alarm_gives_tag_start_then_end(live, vmic, tmp_path):
    wav = tmp_path / "alarm.wav"
    beeps = smoke_alarm(wav)
    groups = beep_groups(beeps)
    file_s = soundfile.info(wav).duration
    before, after, _ = live.play(vmic, wav)

    def ended(model: str) -> int:
        return sum(x["type"] == "tag_end" and x["model"] == model for x in live.events)

    live.until(lambda e: ended(MODEL.stem) == 1 and ended(DETECTOR) == 1, 15)
    live.collect(QUIET_AFTER_S)
    assert len(groups) == 2  # one event for the two
    assert live.decisions(model=MODEL.stem) == [("tag_start", "smoke_alarm"), ("tag_end", "smoke_alarm")], \
        live.summary()
    # the file started on the stream between `before` and `after - file_s` (the capture timeline bracket)
    first_s, last_s = before / RATE_HZ, after / RATE_HZ - file_s
    assert first_s <= last_s + 0.2, (before, after, file_s)
    _assert_pattern_detector_heard_whole_groups(live, live.events, beeps, first_s, last_s)
    start, end = [e for e in live.events if e["type"] in ("tag_start", "tag_end") and e["model"] == MODEL.stem]
    alarm_start_s, alarm_end_s = groups[0][0], groups[-1][1]
    assert start["start_samples"] == end["start_samples"]
    earliest_s = first_s + alarm_start_s + TAG_START_WINDOW_S[0]
    latest_s = last_s + alarm_start_s + TAG_START_WINDOW_S[1]
    assert earliest_s <= start["start_s"] <= latest_s, (start, alarm_start_s, first_s, last_s)
    assert start["position_s"] >= start["start_s"] + 0.3  # min_duration_s before it is published
    end_s = end["start_s"] + end["duration_s"]
    assert abs(end_s - end["position_s"]) < 0.01 and end["reason"] == "off"
    assert first_s + alarm_end_s + TAG_END_WINDOW_S[0] <= end_s <= last_s + alarm_end_s + TAG_END_WINDOW_S[1], (
        end, alarm_end_s, first_s, last_s)
    # published hold_s after its last hop on: the wall clock between the two events is the stream's plus the hold
    assert end["time"] - start["time"] >= end_s - start["position_s"] + HOLD_S - 0.5, (start, end)
    assert 0.5 <= start["peak_score"] <= end["peak_score"] <= 1.0
    assert 0.3 <= end["mean_score"] <= end["peak_score"]
    _assert_stops_cleanly(live)


def test_microphone_removed_mid_stream_is_reported_reopened_and_still_hears(live, vmic, tmp_path):
    wav = tmp_path / "utterance.wav"
    word_s = speech(wav)
    vmic.remove_device()
    lost = live.until(lambda e: e["type"] == "status" and e["state"] == "device_lost", 20)
    assert lost["stream"] == "mic"
    # while the device is gone (a bounded look, DEVICE_GONE_S): the service runs on, hears nothing, and
    # does not claim the device back
    gone_at = live.position_samples()
    during = live.collect(DEVICE_GONE_S)
    assert live.proc.poll() is None, live.log()
    assert not [e for e in during if e["type"] == "status" and e["state"].startswith("device_")], live.summary()
    assert live.position_samples() - gone_at < 0.1 * RATE_HZ
    status = request(live.control, {"cmd": "status"})["status"]["streams"]["mic"]
    assert status["connected"] is False
    vmic.restore_device()
    reopened = live.until(lambda e: e["type"] == "status" and e["state"] == "device_reopened", 30)
    assert reopened["detail"]["downtime_s"] >= DEVICE_GONE_S and live.proc.poll() is None
    states = [e["state"] for e in live.events if e["type"] == "status" and e["state"].startswith("device_")]
    assert states == ["device_opened", "device_lost", "device_reopened"]
    live.wait_for_samples()
    assert request(live.control, {"cmd": "status"})["status"]["streams"]["mic"]["reopens"] == 1
    # Known issue (in the issue notes): after a reopen that went through a PortAudio re-enumeration,
    # this virtual microphone can deliver silence for the first seconds although samples flow (about 1
    # run in 4; the next utterance is always heard). So the keyword must be heard again within three
    # utterances; a missed one is retried, any wrong or mistimed event fails at once.
    for attempt in range(3):
        n_before = len(live.events)
        try:
            _assert_one_keyword_at_the_word(live, vmic, wav, word_s)
            break
        except AssertionError:
            if attempt == 2 or any(e["type"] == "keyword" for e in live.events[n_before:]):
                raise
    _assert_stops_cleanly(live)


def test_fast_file_run_of_the_same_audio_makes_the_same_decisions(tmp_path):
    """The deterministic companion: no sound server, the same generated audio through --source file: --fast
    gives the events the two live tests expect, in the same order, at the same places."""
    word, alarm = tmp_path / "utterance.wav", tmp_path / "alarm.wav"
    word_s = speech(word)
    beeps = smoke_alarm(alarm)
    groups = beep_groups(beeps)
    both = tmp_path / "both.wav"
    word_at_s, alarm_at_s = concat(both, word, alarm, gap_s=1.0)
    service = Service(tmp_path, None, "--source", f"file:{both}", "--fast")
    try:
        service.until(lambda e: e["type"] == "status" and e["state"] == "stopping", 120)
        assert service.proc.wait(10) == 0, service.log()
    finally:
        service.close()
    expected = [("keyword", KEYWORD), ("tag_start", "smoke_alarm"), ("tag_end", "smoke_alarm")]  # one for both groups
    assert len(groups) == 2 and service.decisions(model=MODEL.stem) == expected, service.summary()
    _assert_pattern_detector_heard_whole_groups(service, service.events, beeps, alarm_at_s, alarm_at_s)
    keyword = next(e for e in service.events if e["type"] == "keyword")
    word_end_s = word_at_s + word_s[1]
    assert word_end_s + KEYWORD_WINDOW_S[0] <= keyword["position_s"] <= word_end_s + KEYWORD_WINDOW_S[1]
    assert keyword["score"] >= _threshold(KEYWORD)
    end = next(e for e in service.events if e["type"] == "tag_end" and e["model"] == MODEL.stem)
    (alarm_start_s, _), (_, alarm_end_s) = groups[0], groups[-1]
    at_s = alarm_at_s + alarm_start_s
    assert at_s + TAG_START_WINDOW_S[0] <= end["start_s"] <= at_s + TAG_START_WINDOW_S[1]
    end_s = end["start_s"] + end["duration_s"]
    assert alarm_at_s + alarm_end_s + TAG_END_WINDOW_S[0] <= end_s <= alarm_at_s + alarm_end_s + TAG_END_WINDOW_S[1]
