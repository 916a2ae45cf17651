"""`streamd run` as a subprocess: events over ZeroMQ, SIGTERM within 2 s, SIGHUP reload, control."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile
import zmq

sys.path.insert(0, str(Path(__file__).parent))
import tiny_model  # noqa: E402

from streamd.control import request  # noqa: E402

STREAMD = [sys.executable, "-m", "streamd.cli"]
CONFIG = """\
models: [{{path: tiny.onnx, latency_ms: 100}}]
keywords: [{{name: "yes", threshold: {threshold}, n_of_m: [2, 3]}}]
tags: [{{name: siren, min_duration_s: 0.2}}]
bus: {{endpoint: "ipc://{dir}/events"}}
control: {{endpoint: "ipc://{dir}/control"}}
heartbeat: {{interval_s: {heartbeat}}}
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("svc")
    tiny_model.build(d / "tiny.onnx")
    soundfile.write(d / "bursts.wav", tiny_model.tone_bursts([(0.5, 1.0), (1.6, 2.6)], 3.0), 16000, subtype="FLOAT")
    soundfile.write(d / "long.wav", tiny_model.tone_bursts([(0.3, 0.8), (6.0, 6.5)], 30.0), 16000, subtype="FLOAT")
    return d


def write_config(d: Path, threshold=0.9, heartbeat=30.0) -> Path:
    path = d / "config.yaml"
    path.write_text(CONFIG.format(dir=d, threshold=threshold, heartbeat=heartbeat))
    return path


class Listener:
    def __init__(self, endpoint: str):
        self.context = zmq.Context()
        self.sub = self.context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.connect(endpoint)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")

    def until(self, predicate, timeout_s=10.0) -> list[dict]:
        """Receive until an event satisfies predicate; return everything received."""
        got, deadline = [], time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.sub.poll(100):
                topic, body = self.sub.recv_multipart()
                event = json.loads(body)
                assert topic.decode().startswith({"keyword": "keyword.", "tag_start": "tag.start.", "tag_end": "tag.end.",
                                                  "status": "status", "scores": "scores"}[event["type"]])
                got.append(event)
                if predicate(event):
                    return got
        raise AssertionError(f"timed out; received {[(e['type'], e.get('state')) for e in got]}")

    def close(self):
        self.sub.close()
        self.context.term()


def start(d: Path, *args) -> subprocess.Popen:
    return subprocess.Popen([*STREAMD, "run", "--config", str(d / "config.yaml"), "--wait-for-subscriber", "20", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_bursts_fast(d: Path) -> list[dict]:
    """Every event of `streamd run --fast` over bursts.wav with d's config; asserts exit 0."""
    listener = Listener(f"ipc://{d}/events")
    proc = start(d, "--source", f"file:{d}/bursts.wav", "--fast")
    try:
        events = listener.until(lambda e: e["type"] == "status" and e["state"] == "stopping", 30)
        assert proc.wait(10) == 0, proc.stderr.read()
    finally:
        proc.kill()
        listener.close()
    return events


def test_fast_file_run_publishes_events_and_exits_0_at_end(workdir):
    write_config(workdir)
    events = run_bursts_fast(workdir)
    assert events[0]["state"] == "running" and events[0]["message"] == "started"
    assert [e["seq"] for e in events] == list(range(len(events)))
    decisions = [(e["type"], e["position_s"]) for e in events if e["type"] != "status"]
    assert decisions == [("keyword", 0.8), ("tag_start", 0.8), ("tag_end", 1.3),
                         ("keyword", 1.9), ("tag_start", 1.9), ("tag_end", 2.9)]
    assert events[-1]["message"] == "stopped: every source finished"
    assert not (workdir / "events").exists() and not (workdir / "control").exists()


def test_a_tag_held_over_a_gap_is_one_event_and_status_says_so(workdir):
    """siren held 1 s: the two bursts (off for 0.6 s between them) are one event, from the first burst's
    start to the second's last hop on; the stream ends within the hold, so it ends as a flush."""
    write_config(workdir)
    text = (workdir / "config.yaml").read_text().replace("{name: siren, min_duration_s: 0.2}",
                                                         "{name: siren, min_duration_s: 0.2, hold_s: 1.0}")
    (workdir / "config.yaml").write_text(text)
    events = run_bursts_fast(workdir)
    decisions = [(e["type"], e["position_s"]) for e in events if e["type"] != "status"]
    assert decisions == [("keyword", 0.8), ("tag_start", 0.8), ("keyword", 1.9), ("tag_end", 2.9)]
    end = next(e for e in events if e["type"] == "tag_end")
    assert (end["start_s"], end["reason"]) == (0.6, "flush")  # the first burst's event start, as without a hold
    assert events[-1]["detail"]["tags"]["siren"]["hold_s"] == 1.0


def test_keyword_events_leave_a_clip_with_the_event_as_sidecar(workdir):
    clips = workdir / "clips"
    write_config(workdir)
    with open(workdir / "config.yaml", "a") as f:
        f.write(f"clips: {{enabled: true, dir: {clips}, pre_roll_s: 0.5, post_roll_s: 0.3}}\n")
    events = run_bursts_fast(workdir)
    keywords = [e for e in events if e["type"] == "keyword"]
    assert len(keywords) == 2
    wavs = sorted(clips.glob("*.wav"))
    assert [p.name.split("-")[-1] for p in wavs] == ["yes.wav", "yes.wav"] and not list(clips.glob(".*"))
    for wav, event in zip(wavs, keywords):
        assert json.loads(wav.with_suffix(".json").read_text()) == event  # exactly as published
        audio, rate = soundfile.read(wav)
        assert rate == 16000 and len(audio) == int(0.8 * 16000)  # pre-roll + post-roll around the position
    assert {k: events[-1]["detail"][k] for k in ("clips_saved", "clips_failed", "clips_refused")} == {
        "clips_saved": 2, "clips_failed": 0, "clips_refused": 0}


def test_review_finds_the_clips_the_service_left_through_its_config_and_keeps_them(workdir):
    """`streamd review --config` reviews the config's clips.dir: the service's own clips and sidecars, a keyword
    kept from its clip (shorter than 1.25 s before the event here: whole), other speech kept whole."""
    clips, out = workdir / "review-clips", workdir / "review-home"  # the module's workdir is shared: folders of its own
    write_config(workdir)
    with open(workdir / "config.yaml", "a") as f:
        f.write(f"clips: {{enabled: true, dir: {clips}, pre_roll_s: 0.5, post_roll_s: 0.3}}\n")
    run_bursts_fast(workdir)
    done = subprocess.run([*STREAMD, "review", "--config", str(workdir / "config.yaml"), "--out", str(out),
                           "--no-play"], input="y\nn\n", text=True, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert f"2 detection clips in {clips} to review" in done.stdout and done.stdout.count('"yes" at 0.') == 2
    lines = (out / "manifest.csv").read_text().splitlines()
    assert [line.split(",")[:2] for line in lines[1:]] == [["kws/yes/clip-001.wav", "yes"],
                                                           ["kws/other_speech/clip-001.wav", "other speech"]]
    assert [len(soundfile.read(out / line.split(",")[0])[0]) for line in lines[1:]] == [int(0.8 * 16000)] * 2


def test_with_clips_tags_each_tag_event_leaves_a_clip_of_it_whole_which_review_keeps_as_a_sound(workdir):
    """clips.tags: a clip per tag event, from pre_roll_s before its start to post_roll_s after its end (the stream's
    end where that comes first), asked for at tag_end, whose event is its sidecar; review keeps it as the tag's sound
    from 0.5 s before the start (here the clip's first 0.1 s go), or as a sound that is none of the tags."""
    clips, out = workdir / "tag-clips", workdir / "tag-home"
    write_config(workdir)
    with open(workdir / "config.yaml", "a") as f:
        f.write(f"clips: {{enabled: true, tags: true, dir: {clips}, pre_roll_s: 1.0, post_roll_s: 0.3}}\n")
    events = run_bursts_fast(workdir)
    ends = [e for e in events if e["type"] == "tag_end"]
    wavs = sorted(clips.glob("*.wav"))
    assert [p.name.split("-")[-1] for p in wavs] == ["yes.wav", "siren.wav", "yes.wav", "siren.wav"]
    assert [json.loads(p.with_suffix(".json").read_text()) for p in wavs[1::2]] == ends
    lengths_s = [len(soundfile.read(p)[0]) / 16000 for p in wavs[1::2]]
    assert lengths_s == pytest.approx([min(e["position_s"] + 0.3, 3.0) - max(e["start_s"] - 1.0, 0.0) for e in ends])
    assert lengths_s == pytest.approx([1.6, 2.3])  # 0-1.6 s (a tag at 0.6-1.3 s); 0.7 s to the stream's end at 3 s
    assert events[-1]["detail"]["clips_saved"] == 4

    done = subprocess.run([*STREAMD, "review", "--config", str(workdir / "config.yaml"), "--out", str(out),
                           "--no-play"], input="y\ny\nb\nn\n", text=True, capture_output=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert 'tag "siren" for 0.7 s peak' in done.stdout
    assert "kept 2 right, 1 other sound, 1 no one spoke" in done.stdout
    lines = (out / "manifest.csv").read_text().splitlines()
    assert [line.split(",")[:2] for line in lines[1:]] == [["kws/yes/clip-001.wav", "yes"],
                                                           ["tags/siren/clip-001.wav", "siren"],
                                                           ["tags/other_sound/clip-001.wav", "other sound"],
                                                           ["noise/household-001.wav", "noise;household"]]
    assert len(soundfile.read(out / "tags/siren/clip-001.wav")[0]) == round((0.5 + 0.7 + 0.3) * 16000)


def test_each_keyword_and_tag_may_say_whether_its_events_keep_clips(workdir):
    """A tag's clip: true keeps its events whole though clips.tags is false; a keyword's clip: false keeps none of
    its own; status says which keep clips."""
    clips = workdir / "chosen-clips"
    write_config(workdir)
    text = (workdir / "config.yaml").read_text()
    text = text.replace("n_of_m: [2, 3]}", "n_of_m: [2, 3], clip: false}").replace("min_duration_s: 0.2}",
                                                                                   "min_duration_s: 0.2, clip: true}")
    (workdir / "config.yaml").write_text(text + f"clips: {{enabled: true, dir: {clips}, pre_roll_s: 0.5, "
                                                f"post_roll_s: 0.3}}\n")
    events = run_bursts_fast(workdir)
    ends = [e for e in events if e["type"] == "tag_end"]
    assert len(ends) == 2 and len([e for e in events if e["type"] == "keyword"]) == 2
    wavs = sorted(clips.glob("*.wav"))
    assert [json.loads(p.with_suffix(".json").read_text()) for p in wavs] == ends  # the tag's events, no keyword's
    status = events[-1]["detail"]
    assert status["keywords"]["yes"]["clip"] is False and status["tags"]["siren"]["clip"] is True
    assert status["clips_saved"] == 2


def test_a_fast_run_keeps_whole_clips_though_its_ticks_would_outrun_a_short_ring(workdir):
    """A fast file source moves as far as a tick steps (64 hops: 6.4 s here); with clips on, a tick steps at most a
    quarter of the ring, so the first event's pre-roll is still there (3 s ring: before, the 0.8 s clip was gone)."""
    clips = workdir / "short-ring-clips"
    write_config(workdir)
    with open(workdir / "config.yaml", "a") as f:
        f.write("scheduler: {ring_s: 3.0, max_lag_s: 1.0}\n"
                f"clips: {{enabled: true, tags: true, dir: {clips}, pre_roll_s: 0.5, post_roll_s: 0.3}}\n")
    listener = Listener(f"ipc://{workdir}/events")
    proc = start(workdir, "--source", f"file:{workdir}/long.wav", "--fast")
    try:
        events = listener.until(lambda e: e["type"] == "status" and e["state"] == "stopping", 60)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        listener.close()
    assert "ring" not in proc.stderr.read()  # no clip lost audio
    keywords = [e for e in events if e["type"] == "keyword"]
    ends = [e for e in events if e["type"] == "tag_end"]
    assert len(keywords) == 2 and len(ends) == 2
    assert events[-1]["detail"]["clips_saved"] == 4
    for event in keywords + ends:
        [wav] = [p for p in clips.glob("*.wav") if json.loads(p.with_suffix(".json").read_text()) == event]
        start_s = event["position_s"] if event["type"] == "keyword" else event["start_s"]
        assert len(soundfile.read(wav)[0]) == round((event["position_s"] + 0.3 - max(start_s - 0.5, 0)) * 16000)


def test_a_keyword_after_its_wake_word_fires_once_per_wake_word_and_status_says_so(workdir):
    # the tiny model scores computer 0.5 everywhere: at threshold 0.5 it fires at once (0.1 s) and opens a
    # 5 s window, where the first burst's "yes" (0.8 s) fires and closes it, so the second (1.9 s) does not
    write_config(workdir)
    text = (workdir / "config.yaml").read_text().replace('keywords: [{name: "yes"', 'keywords: [{name: computer}, '
                                                          '{name: "yes", after: computer')
    (workdir / "config.yaml").write_text(text)
    events = run_bursts_fast(workdir)
    assert [(e["keyword"], e["position_s"]) for e in events if e["type"] == "keyword"] == [
        ("computer", 0.1), ("yes", 0.8)]
    keywords = events[-1]["detail"]["keywords"]
    assert keywords["yes"]["after"] == "computer" and keywords["computer"]["after"] is None
    assert keywords["yes"]["group"] is None  # no group in this config (docs/service.md "One word, one command")
    (workdir / "config.yaml").write_text(text.replace("{name: computer}", "{name: computer, threshold: 0.6}"))
    assert [e for e in run_bursts_fast(workdir) if e["type"] == "keyword"] == []  # no wake word: no "yes"


def test_sigterm_stops_cleanly_within_2_s(workdir):
    write_config(workdir)
    listener = Listener(f"ipc://{workdir}/events")
    proc = start(workdir, "--source", f"file:{workdir}/long.wav")  # real-time pace: 30 s
    try:
        listener.until(lambda e: e["type"] == "keyword", 15)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(5)
        elapsed = time.monotonic() - sent
        final = listener.until(lambda e: e["type"] == "status" and e["state"] == "stopping", 2)[-1]
    finally:
        proc.kill()
        listener.close()
    assert rc == 0, proc.stderr.read()
    assert elapsed < 2.0
    assert final["message"] == "stopped: SIGTERM"
    assert final["detail"]["streams"]["mic"]["position_samples"] < 10 * 16000  # it did not play the file out


def test_sighup_reload_applies_thresholds_and_a_bad_reload_keeps_running(workdir):
    config = write_config(workdir)
    listener = Listener(f"ipc://{workdir}/events")
    proc = start(workdir, "--source", f"file:{workdir}/long.wav")
    control = f"ipc://{workdir}/control"
    try:
        listener.until(lambda e: e["type"] == "keyword", 15)  # first burst at 0.3 s
        write_config(workdir, threshold=0.5)
        proc.send_signal(signal.SIGHUP)
        listener.until(lambda e: e.get("state") == "reloaded", 5)
        assert request(control, {"cmd": "status"})["status"]["keywords"]["yes"]["threshold"] == 0.5
        config.write_text("keywords: [{name: nope}]\n")
        proc.send_signal(signal.SIGHUP)
        failed = listener.until(lambda e: e.get("state") == "reload_failed", 5)[-1]
        assert "keywords[0].name: got 'nope'" in failed["message"]
        status = request(control, {"cmd": "status"})["status"]
        assert status["keywords"]["yes"]["threshold"] == 0.5 and proc.poll() is None
        assert request(control, {"cmd": "set_threshold", "name": "yes", "threshold": 0.7})["ok"]
        assert request(control, {"cmd": "disable", "name": "siren"})["ok"]
        status = request(control, {"cmd": "status"})["status"]
        assert status["keywords"]["yes"]["threshold"] == 0.7 and status["tags"]["siren"]["enabled"] is False
        assert request(control, {"cmd": "frobnicate"})["ok"] is False
        proc.send_signal(signal.SIGINT)
        assert proc.wait(5) == 0
    finally:
        proc.kill()
        listener.close()
        write_config(workdir)


def test_heartbeat_status_events_arrive_at_the_interval(workdir):
    write_config(workdir, heartbeat=0.3)
    listener = Listener(f"ipc://{workdir}/events")
    proc = start(workdir, "--source", f"file:{workdir}/long.wav")
    try:
        events = listener.until(lambda e: e.get("message") == "heartbeat", 5)
        t0 = events[-1]["time"]
        t1 = listener.until(lambda e: e.get("message") == "heartbeat", 5)[-1]["time"]
        assert 0.2 < t1 - t0 < 0.8
        beat = events[-1]["detail"]
        assert beat["runs"][0]["model"] == "tiny" and beat["models"][0]["hop_samples"] == 1600
        assert beat["bus"]["subscriptions"] >= 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        proc.kill()
        listener.close()
        write_config(workdir)


def _main_thread_wakes(pid: int) -> int:
    """Times the main thread went to sleep and woke (voluntary context switches)."""
    with open(f"/proc/{pid}/task/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("voluntary_ctxt_switches")).split()[1])


def _main_thread_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/task/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_main_loop_sleeps_per_hop_not_per_block_and_answers_control_at_once(workdir):
    """Capture delivers 10 ms blocks (100/s); at a 200 ms hop the main thread should wake a few times
    per hop, yet a control request must not wait for the hop."""
    path = write_config(workdir)
    path.write_text(path.read_text().replace("latency_ms: 100", "latency_ms: 200"))
    listener = Listener(f"ipc://{workdir}/events")
    proc = start(workdir, "--source", f"file:{workdir}/long.wav")
    control = f"ipc://{workdir}/control"
    try:
        listener.until(lambda e: e.get("state") == "running", 30)
        listener.until(lambda e: e["type"] == "keyword", 15)  # hops are being stepped
        wakes0, cpu0, t0 = _main_thread_wakes(proc.pid), _main_thread_cpu_s(proc.pid), time.monotonic()
        time.sleep(3.0)
        wakes_per_s = (_main_thread_wakes(proc.pid) - wakes0) / (time.monotonic() - t0)
        cpu_pct = 100 * (_main_thread_cpu_s(proc.pid) - cpu0) / (time.monotonic() - t0)
        latencies = []
        for _ in range(7):
            sent = time.monotonic()
            assert request(control, {"cmd": "status"})["status"]["models"][0]["hop_samples"] == 3200
            latencies.append(time.monotonic() - sent)
            time.sleep(0.037)  # land at different points of the hop
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        proc.kill()
        listener.close()
        write_config(workdir)
    assert wakes_per_s < 50, f"main thread woke {wakes_per_s:.0f} times/s"  # the per-block loop: ~100-270
    assert cpu_pct < 1.5, f"main thread used {cpu_pct:.2f}% of a core"  # the per-block loop: ~1.6
    assert sorted(latencies)[3] < 0.06, f"control replies took {latencies}"
