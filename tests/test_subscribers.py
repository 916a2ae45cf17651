"""Other programs on the bus, against `streamd run` as a subprocess: `streamd listen --exec` and
examples/subscribe.py act on every event, in order, and say when something went wrong."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import tiny_model  # noqa: E402

from streamd.hooks import event_env  # noqa: E402

STREAMD = [sys.executable, "-m", "streamd.cli"]
EXAMPLE = Path(__file__).parent.parent / "examples" / "subscribe.py"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tiny_model.service_folder(tmp_path_factory.mktemp("subscribers"))


def run_service(d: Path) -> None:
    """`streamd run --fast` over bursts.wav once a subscriber is there; asserts it ends cleanly."""
    run = subprocess.run([*STREAMD, "run", "--config", str(d / "config.yaml"), "--source", f"file:{d}/bursts.wav",
                          "--fast", "--wait-for-subscriber", "20"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def listen_during_a_run(folder: Path, *args: str) -> tuple[list[str], str]:
    """`streamd listen ARGS` on the folder's bus while the service runs over its bursts once: (the lines it printed,
    its stderr); asserts it ends cleanly on its --timeout of 3 s."""
    listen = subprocess.Popen([*STREAMD, "listen", "--endpoint", f"ipc://{folder}/events", "--timeout", "3", *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_service(folder)
        stdout, stderr = listen.communicate(timeout=30)
    finally:
        listen.kill()
    assert listen.returncode == 0, stderr
    return stdout.splitlines(), stderr


@pytest.fixture(scope="module")
def two(workdir):
    """The service folder with two models of the same tag (as config.yaml's two score smoke_alarm), the second
    at 200 ms: their events for one burst overlap."""
    two = workdir / "two"
    two.mkdir()
    (two / "bursts.wav").write_bytes((workdir / "bursts.wav").read_bytes())
    for name in ("tiny.onnx", "tiny2.onnx"):
        (two / name).write_bytes((workdir / "tiny.onnx").read_bytes())
    both = "models: [{path: tiny.onnx, latency_ms: 100}, {path: tiny2.onnx, latency_ms: 200}]"
    config = (workdir / "config.yaml").read_text().replace("models: [{path: tiny.onnx, latency_ms: 100}]", both)
    (two / "config.yaml").write_text(config.replace(str(workdir), str(two)))
    return two


def test_the_example_subscriber_acts_once_on_a_sound_two_models_hear(two):
    """Each burst is acted on once, at the first model's start and at the last model's end, though the bus
    carries both models' events."""
    example = subprocess.Popen([sys.executable, str(EXAMPLE), f"ipc://{two}/events", "tag."],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_service(two)
        time.sleep(1.0)
        example.terminate()
        stdout, _ = example.communicate(timeout=10)
    finally:
        example.kill()
    lines = stdout.splitlines()
    assert [line.split(" on mic")[0] for line in lines] == ["siren started", "siren ended"] * 2, lines


def test_the_example_subscribers_sounds_forget_what_a_restarted_service_never_ended():
    """A service killed mid-alarm sends no tag_end: after forget (on its next start, or silence) the next start
    is acted on again, where it would otherwise be taken for the same sound for ever."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("subscribe_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    sounds = example.Sounds()
    alarm = {"stream": "mic", "tag": "smoke_alarm"}
    assert sounds.starts({**alarm, "model": "streamd-sat"}) and not sounds.starts({**alarm, "model": "streamd-alarm"})
    assert not sounds.ends({**alarm, "model": "streamd-sat"})  # the detector still hears it
    assert not sounds.starts({**alarm, "model": "streamd-sat"})  # the same sound, heard again
    sounds.forget()
    assert sounds.starts({**alarm, "model": "streamd-alarm"})
    assert sounds.starts({**alarm, "stream": "kitchen", "model": "streamd-alarm"})  # another stream, another sound


@pytest.mark.parametrize("every_model", [False, True])
def test_listen_exec_acts_once_per_sound_two_models_hear_unless_asked_for_every_model(two, every_model):
    """It prints every event of its topic (both models' starts) and runs the command at the first model's start
    of each burst; --every-model runs it for each. The tag ends it follows for that are not printed."""
    out = two / f"exec-{every_model}.txt"
    stdout, _ = listen_during_a_run(two, "--topic", "tag.start.", "--exec", f'echo "$STREAMD_EVENT" >> {out}',
                                    *(["--every-model"] if every_model else []))
    printed = [json.loads(line) for line in stdout]
    assert [(e["type"], sorted((e["model"], o["model"]))) for e, o in zip(printed[::2], printed[1::2])] == [
        ("tag_start", ["tiny", "tiny2"])] * 2, printed  # both models' start of each burst, in the bus's order
    acted = [json.loads(line) for line in out.read_text().splitlines()]
    assert acted == (printed if every_model else printed[::2])


def test_listen_sounds_forget_what_a_service_that_started_again_never_ended():
    """A service killed mid-alarm sends no tag_end: its next process (a lower seq, or its started status) starts
    afresh, where the old start would otherwise hold the alarm as heard for ever."""
    from streamd.sounds import Sounds

    sounds = Sounds()
    alarm = {"type": "tag_start", "stream": "mic", "tag": "smoke_alarm"}
    assert sounds.acts_on({**alarm, "seq": 10, "model": "streamd-sat"})
    assert not sounds.acts_on({**alarm, "seq": 11, "model": "streamd-alarm"})  # the same sound
    assert not sounds.acts_on({**alarm, "type": "tag_end", "seq": 12, "model": "streamd-sat"})  # still heard
    assert not sounds.acts_on({**alarm, "seq": 13, "model": "streamd-sat"})
    assert sounds.acts_on({**alarm, "seq": 14, "stream": "kitchen", "model": "streamd-sat"})  # another stream
    assert sounds.acts_on({**alarm, "seq": 3, "model": "streamd-sat"})  # a new process: seq went back
    assert not sounds.acts_on({**alarm, "seq": 4, "model": "streamd-alarm"})
    started = {"type": "status", "stream": None, "state": "running", "message": "started"}
    assert sounds.acts_on({**started, "seq": 5})  # status events are acted on, and this one forgets
    assert sounds.acts_on({**alarm, "seq": 6, "model": "streamd-alarm"})
    assert sounds.acts_on({"type": "keyword", "seq": 7, "keyword": "stop"})
    assert sounds.acts_on({**alarm, "type": "tag_end", "seq": 8, "model": "streamd-alarm"})  # the last model's end


def test_event_env_names_what_was_heard_and_leaves_the_rest_empty():
    keyword = b'{"schema":1,"type":"keyword","seq":7,"stream":"mic","position_s":3.0,"keyword":"yes","score":0.93}'
    assert event_env(b"keyword.yes", keyword) == {
        "STREAMD_TOPIC": "keyword.yes", "STREAMD_TYPE": "keyword", "STREAMD_STREAM": "mic", "STREAMD_POSITION_S": "3.0",
        "STREAMD_LABEL": "yes", "STREAMD_SCORE": "0.93", "STREAMD_EVENT": keyword.decode()}
    end = b'{"type":"tag_end","stream":"mic","position_s":2.5,"tag":"dog","peak_score":0.91,"mean_score":0.7}'
    assert (event_env(b"tag.end.dog", end)["STREAMD_LABEL"], event_env(b"tag.end.dog", end)["STREAMD_SCORE"]) == ("dog", "0.91")
    status = b'{"type":"status","stream":null,"position_s":null,"state":"running","message":"heartbeat"}'
    env = event_env(b"status", status)
    assert (env["STREAMD_LABEL"], env["STREAMD_SCORE"], env["STREAMD_STREAM"], env["STREAMD_POSITION_S"]) == ("", "", "", "")


def test_listen_exec_runs_the_command_once_per_event_in_order_and_reports_failures(workdir):
    out = workdir / "exec"
    out.mkdir()
    # the command sees the event in its environment and on stdin, and fails for keywords
    command = (f'echo "$STREAMD_TYPE $STREAMD_LABEL $STREAMD_SCORE $STREAMD_TOPIC" >> {out}/env.txt; '
               f'cat >> {out}/stdin.txt; [ "$STREAMD_TYPE" != keyword ] || exit 3')
    stdout, stderr = listen_during_a_run(workdir, "--topic", "keyword.", "--topic", "tag.", "--exec", command)
    printed = [json.loads(line) for line in stdout]
    assert [(e["type"], e["position_s"]) for e in printed] == [
        ("keyword", 0.8), ("tag_start", 0.8), ("tag_end", 1.3), ("keyword", 1.9), ("tag_start", 1.9), ("tag_end", 2.9)]
    assert (out / "stdin.txt").read_text().splitlines() == stdout  # each event's JSON, in order
    expected = [f"{e['type']} {e.get('keyword', e.get('tag'))} {e.get('score', e.get('peak_score'))} "
                f"{'keyword.yes' if e['type'] == 'keyword' else e['type'].replace('_', '.') + '.siren'}" for e in printed]
    assert (out / "env.txt").read_text().splitlines() == expected
    assert stderr.splitlines() == ["streamd listen: --exec command exited with 3 for keyword.yes"] * 2


def test_the_example_subscriber_acts_on_events_and_notices_the_service_is_gone(workdir):
    example = subprocess.Popen([sys.executable, str(EXAMPLE), f"ipc://{workdir}/events", "keyword.", "tag.start.",
                                "--stale-s", "1.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_service(workdir)
        time.sleep(3.5)  # past --stale-s after the service's last message, with a poll second to spare
        example.terminate()
        stdout, stderr = example.communicate(timeout=10)
    finally:
        example.kill()
    assert stdout.splitlines() == ["heard 'yes' on mic (score 0.99)", "siren started on mic at 0.60 s",
                                   "heard 'yes' on mic (score 0.99)", "siren started on mic at 1.70 s"]
    assert stderr.splitlines() == ["streamd stopped: every source finished",
                                   "no message from streamd for 1.5 s: is it running?"], stderr
