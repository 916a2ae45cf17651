"""The streamd command: exit codes, one-line errors, scan output."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import tiny_model  # noqa: E402

STREAMD = [sys.executable, "-m", "streamd.cli"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tiny_model.service_folder(tmp_path_factory.mktemp("cli"))


def streamd(*args, cwd=None):
    return subprocess.run([*STREAMD, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_check_ok(workdir):
    out = streamd("check", "--config", str(workdir / "config.yaml"))
    assert out.returncode == 0, out.stderr
    assert "models tiny (tiny-energy, hop 100 ms); 1 keywords, 1 tags" in out.stdout


def test_check_notes_clips_asked_for_while_clips_are_off(workdir):
    config = workdir / "clip-off.yaml"
    text = (workdir / "config.yaml").read_text()
    config.write_text(text + "clips: {enabled: false, tags: true}\n")
    out = streamd("check", "--config", str(config))
    assert out.returncode == 0 and out.stdout.startswith("ok: ")
    assert out.stderr == "note: clips.enabled is false, so clips.tags keeps no clips\n"


@pytest.mark.parametrize("text,message", [
    ("bus: {hwm: 3}\n", "bus.hwm: unknown key"),
    ("models: [{path: tiny.onnx, latency_ms: 150}]\n", "models[0].latency_ms: got 150, expected one of the model's hops: 100, 200 (ms)"),
    ("models: [{path: tiny.onnx, latency_ms: 100}]\nkeywords: [{name: yes}]\n", "keywords[0].name: got True"),
    ("models: [{path: tiny.onnx, latency_ms: 100}]\ntags: [{name: cat}]\n", "tags[0].name: got 'cat', expected a tag label"),
    ("models: [{path: missing.onnx}]\n", "missing.onnx: no such model file"),
    ("models: [{path: corrupt.onnx}]\n", "corrupt.onnx: not a loadable ONNX model"),
    ("bus: [unclosed\n", "not valid YAML at line"),
])
def test_bad_config_or_model_exits_2_with_one_line(workdir, text, message):
    (workdir / "corrupt.onnx").write_bytes(b"\x08\x01garbage" * 100)
    bad = workdir / "bad.yaml"
    bad.write_text(text)
    for command in ("check", "run"):
        out = streamd(command, "--config", str(bad))
        assert out.returncode == 2, (command, out.stderr)
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("streamd: ") and message in out.stderr
        assert "Traceback" not in out.stderr


def test_missing_source_file_exits_2(workdir):
    out = streamd("run", "--config", str(workdir / "config.yaml"), "--source", "file:/nonexistent.wav", "--fast")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr


def test_unusable_clips_folder_exits_2_naming_the_key(workdir):
    (workdir / "not_a_dir").write_text("a file where the clips folder should go")
    cfg = workdir / "clips.yaml"
    cfg.write_text((workdir / "config.yaml").read_text() + f"clips: {{enabled: true, dir: {workdir}/not_a_dir/clips}}\n")
    out = streamd("run", "--config", str(cfg), "--source", f"file:{workdir}/bursts.wav", "--fast")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith(f"streamd: clips.dir: cannot create or use '{workdir}/not_a_dir/clips': Not a directory")
    assert not (workdir / "events").exists() and not (workdir / "control").exists()
    checked = streamd("check", "--config", str(cfg))  # check says so too, and creates nothing
    assert checked.returncode == 2 and checked.stderr.count("\n") == 1, checked.stderr
    assert "is not a directory" in checked.stderr and f"'{workdir}/not_a_dir'" in checked.stderr
    cfg.write_text(cfg.read_text().replace("not_a_dir/clips", "new/clips"))
    checked = streamd("check", "--config", str(cfg))
    assert checked.returncode == 0 and checked.stdout.rstrip().endswith(f"; clips in {workdir}/new/clips")
    assert not (workdir / "new").exists()


def test_scan_prints_hops_and_events(workdir):
    out = streamd("scan", "--config", str(workdir / "config.yaml"), str(workdir / "bursts.wav"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"== {workdir / 'bursts.wav'}"
    assert lines[1] == "[0.00s]-[0.10s] no 0.50, computer 0.50, dog 0.50"
    assert "[0.60s]-[0.70s] yes 0.99, siren 0.99, no 0.50" in lines
    assert "   [0.80s] mic keyword yes 0.99" in lines
    assert sum(line.startswith("[") for line in lines) == 30  # one per 100 ms hop of 3 s


def test_scan_names_the_model_of_each_line_when_a_config_has_several(workdir):
    """Two models that share labels (as config.yaml's two share smoke_alarm): each hop line and each event says
    whose it is; with one model the lines stay as above."""
    (workdir / "tiny2.onnx").write_bytes((workdir / "tiny.onnx").read_bytes())
    config = workdir / "two.yaml"
    two = "models: [{path: tiny.onnx, latency_ms: 100}, {path: tiny2.onnx, latency_ms: 200}]"
    one = "models: [{path: tiny.onnx, latency_ms: 100}]"
    config.write_text((workdir / "config.yaml").read_text().replace(one, two))
    out = streamd("scan", "--config", str(config), str(workdir / "bursts.wav"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert sum(line.startswith("[") and "] tiny: " in line for line in lines) == 30  # 100 ms hops of 3 s
    assert sum(line.startswith("[") and "] tiny2: " in line for line in lines) == 15  # 200 ms hops
    assert "   [0.80s] mic tiny keyword yes 0.99" in lines
    assert sum(line.startswith("   ") and " mic tiny2 " in line for line in lines) >= 2


def test_scan_json_is_exactly_the_events(workdir):
    out = streamd("scan", "--json", "--config", str(workdir / "config.yaml"), str(workdir / "bursts.wav"))
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(e["type"], e["seq"], e["position_samples"]) for e in events] == [
        ("keyword", 0, 12800), ("tag_start", 1, 12800), ("tag_end", 2, 20800),
        ("keyword", 3, 30400), ("tag_start", 4, 30400), ("tag_end", 5, 46400)]
    assert list(events[0]) == ["schema", "type", "seq", "time", "stream", "position_samples", "position_s", "model",
                               "keyword", "score"]


def test_listen_times_out_cleanly_without_a_service(workdir):
    out = streamd("listen", "--endpoint", f"ipc://{workdir}/nobody", "--timeout", "0.3")
    assert out.returncode == 0 and out.stdout == ""


def test_ctl_without_a_service_is_a_runtime_failure(workdir):
    out = streamd("ctl", "status", "--endpoint", f"ipc://{workdir}/nobody", "--timeout", "0.3")
    assert out.returncode == 1 and "no reply" in out.stderr


def test_bench_hands_its_arguments_to_streamd_bench(monkeypatch):
    import streamd.bench
    from streamd.cli import main

    seen = []
    monkeypatch.setattr(streamd.bench, "main", lambda argv: seen.append(argv) or 7)
    assert main(["bench", "--only", "service", "--seconds", "5", "m.onnx"]) == 7
    assert main(["bench"]) == 7
    assert seen == [["--only", "service", "--seconds", "5", "m.onnx"], []]


def test_bench_exit_code_and_usage_through_the_command(workdir):
    out = streamd("bench", "--only", "hop", str(workdir / "missing.onnx"))
    assert out.returncode == 2
    assert "missing.onnx: no such model file" in out.stderr
    usage = streamd("bench", "--help")
    assert usage.returncode == 0 and usage.stdout.startswith("usage: streamd bench")
