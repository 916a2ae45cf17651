"""streamd bench's own pieces: the FLOP counter on graphs whose cost is known by hand, and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
import tiny_model
from onnx import TensorProto, helper, numpy_helper

from streamd.bench import main, parse_args, table
from streamd.benchservice import bench_copy_of_config, split_cpu_s
from streamd.flops import flops_per_step


def _save(tmp_path, nodes, inits, out_shape):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, "hop_samples"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(np.ones(shape, np.float32), name) for name, shape in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path = tmp_path / "g.onnx"
    onnx.save(model, path)
    return path


def test_matmul_and_gemm_flops_are_2_m_k_n(tmp_path):
    path = _save(tmp_path, [helper.make_node("MatMul", ["audio", "w"], ["h"]),
                            helper.make_node("Gemm", ["h", "v"], ["scores"])],
                 [("w", (64, 10)), ("v", (10, 3))], [1, 3])
    assert flops_per_step(path, 64) == 2 * 64 * 10 + 2 * 10 * 3


def test_conv_flops_scale_with_the_hop(tmp_path):
    # audio [1, hop] -> [1, 1, hop] -> Conv 8 channels, kernel 16, stride 16 -> [1, 8, hop / 16]
    shape = numpy_helper.from_array(np.array([1, 1, -1], np.int64), "shape")
    nodes = [helper.make_node("Reshape", ["audio", "shape"], ["x"]),
             helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[16], strides=[16]),
             helper.make_node("ReduceMean", ["y"], ["scores"], axes=[2], keepdims=0)]
    graph_path = _save(tmp_path, nodes, [("w", (8, 1, 16))], [1, 8])
    model = onnx.load(graph_path)
    model.graph.initializer.append(shape)
    onnx.save(model, graph_path)
    for hop in (160, 320):
        assert flops_per_step(graph_path, hop) == 2 * 8 * (hop // 16) * 16


def test_table_aligns_and_marks_missing_values():
    text = table([{"a": "x", "b": 1.5}, {"a": "longer"}], [("a", "name", "s"), ("b", "value", ".2f")])
    assert text.splitlines() == ["  name  value", "     x   1.50", "longer      -"]


def test_unknown_section_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(["--only", "hop,nope", "m.onnx"])
    assert info.value.code == 2 and "nope" in capsys.readouterr().err


def test_service_sections_default_to_the_default_model(tmp_path, monkeypatch):
    """Without model arguments every models/*.onnx is benchmarked, but the service sections run the default
    config's model, not the first file by name (streamd-alarm.onnx, which hears no keyword)."""
    (tmp_path / "models").mkdir()
    for name in ("streamd-alarm.onnx", "streamd-sat.onnx", "streamd-dscnn.onnx"):
        (tmp_path / "models" / name).write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    args = parse_args(["--only", "latency"])
    assert args.service_model == Path("models/streamd-sat.onnx") and len(args.models) == 3
    assert parse_args(["--only", "latency", "models/streamd-dscnn.onnx"]).service_model is None  # first given


def test_broken_model_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert main(["--only", "hop", "--repeats", "5", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.onnx" in err[0]


def test_machine_names_the_best_instruction_set_from_cpuinfo(tmp_path, monkeypatch):
    import streamd.bench as bench

    cases = {"flags\t\t: fpu sse2 avx avx2 fma": "AVX2",
             "flags\t\t: avx2 avx512f avx512bw avx512_vnni": "AVX-512 VNNI",
             "flags\t\t: avx2 avx512f": "AVX-512",
             "Features\t: fp asimd asimddp": "Arm dot product",
             "flags\t\t: sse2": ""}
    real_path = bench.Path
    for flags, isa in cases.items():
        info = tmp_path / "cpuinfo"
        info.write_text(f"processor\t: 0\nmodel name\t: Some CPU\n{flags}\n\nprocessor\t: 1\nmodel name\t: Other\n")
        monkeypatch.setattr(bench, "Path", lambda p, info=info: info if p == "/proc/cpuinfo" else real_path(p))
        got = bench.machine()
        assert (got["cpu"], got["isa"]) == ("Some CPU", isa)


def test_a_card_names_the_cpu_and_the_speech_gate():
    from export.model_card import cpu_words, gate_words

    assert cpu_words({"machine": {"cpu": "AMD EPYC", "isa": "AVX2", "cores": 2}}) == "AMD EPYC with AVX2, 2 cores"
    assert cpu_words({}) == "this 2-core machine"  # evaluations from before the machine was recorded
    assert gate_words({"speech_gate": 0.5, "speech_gate_s": 1.28}) == "speech gate 0.5 over 1.28 s"
    assert gate_words({"speech_gate": 0.0, "speech_gate_s": 1.28}) == "no speech gate"
    assert gate_words({}) == "no speech gate"
    paused = {"speech_gate": 0.5, "speech_gate_s": 1.28, "pause_before": 0.5, "pause_before_s": [0.32, 1.28]}
    assert gate_words(paused) == "speech gate 0.5 over 1.28 s, a pause (speech below 0.5) 0.32-1.28 s before"
    assert gate_words(paused | {"pause_drop_db": 10.0}) == \
        "speech gate 0.5 over 1.28 s, a pause (speech below 0.5 or 10 dB quieter than the word) 0.32-1.28 s before"


def test_turns_times_every_model_at_their_common_hop_against_the_first(tmp_path):
    import tiny_model

    from streamd.bench import bench_turns

    first, second = tiny_model.build(tmp_path / "a.onnx"), tiny_model.build(tmp_path / "b.onnx")
    rows = bench_turns([first, second], repeats=20, rounds=2)
    assert [(r["round"], r["model"]) for r in rows] == [(1, "a.onnx"), (1, "b.onnx"), (2, "a.onnx"), (2, "b.onnx")]
    assert all(r["hop_ms"] == 100.0 for r in rows)  # the smaller of the two hops they share
    assert [r["ratio_to_first"] for r in rows[0::2]] == [1.0, 1.0]
    for r in rows:
        assert r["median_ms_per_audio_s"] == pytest.approx(10 * r["median_ms_per_hop"])
        assert 0 < r["median_ms_per_hop"] < 1000
    assert all(r["ratio_to_first"] == pytest.approx(r["median_ms_per_hop"] / rows[i - i % 2]["median_ms_per_hop"])
               for i, r in enumerate(rows))


def test_turns_of_models_without_a_common_hop_exits_2_naming_their_hops(tmp_path, capsys):
    import tiny_model

    tiny = tiny_model.build(tmp_path / "tiny.onnx")
    sat = Path(__file__).resolve().parents[1] / "models" / "streamd-sat.onnx"
    assert main(["--only", "turns", "--repeats", "5", str(tiny), str(sat)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "share no hop" in err[0] and "[1600, 3200]" in err[0] and "[2560," in err[0]


def test_mic_section_runs_the_service_on_the_virtual_microphone(tmp_path, vmic):
    """`--only mic`: `streamd run` hears the bench audio through a PulseAudio null sink, is measured while
    running and stops cleanly; the row says how much of a core it took."""
    model = tiny_model.build(tmp_path / "tiny.onnx")
    out = tmp_path / "bench.json"
    assert main(["--only", "mic", "--seconds", "5", "--json", str(out), str(model)]) == 0
    [row] = json.loads(out.read_text())["mic"]
    assert row["source"] == "virtual mic" and row["exit_code"] == 0
    assert 5.0 <= row["seconds"] < 6.0
    assert 0.0 < row["cpu_pct_of_core"] < 100.0 and row["threads"] >= 3
    # split by thread: PortAudio's callback thread names itself (audio-mic), so its CPU is told from the main
    # loop's (each ~1 % of a core here: 5 clock ticks in 5 s); the rest is what they leave of the total
    main_pct, audio_pct = row["main_cpu_pct_of_core"], row["audio_cpu_pct_of_core"]
    assert main_pct > 0.0 and audio_pct > 0.0 and main_pct + audio_pct <= row["cpu_pct_of_core"] + 0.5
    assert row["other_cpu_pct_of_core"] == pytest.approx(max(0.0, row["cpu_pct_of_core"] - main_pct - audio_pct))


def test_callback_section_times_the_capture_callback_and_the_readers_conversion(tmp_path, vmic):
    """`--only callback`: 10 ms blocks arrive 100 times a second; the callback (which only queues) and the
    conversion once per 160 ms hop each take a measured, positive share of a core."""
    out = tmp_path / "bench.json"
    model = tiny_model.build(tmp_path / "tiny.onnx")
    assert main(["--only", "callback", "--seconds", "3", "--json", str(out), str(model)]) == 0
    [row] = json.loads(out.read_text())["callback"]
    assert row["block_ms"] == 10 and 80 <= row["callbacks_per_s"] <= 120 and row["hop_ms"] == 160
    assert 0 < row["callback_us"] < 10_000 and 0 < row["convert_us_per_hop"] < 100_000
    assert row["callback_pct_of_core"] > 0 and row["convert_pct_of_core"] > 0
    assert "PULSE_SERVER" not in os.environ or os.environ["PULSE_SERVER"] == vmic.env["PULSE_SERVER"]  # restored


def test_mic_config_keeps_models_keywords_and_capture_settings_and_moves_sockets_and_clips(tmp_path):
    """`--mic-config config.yaml`: the bench runs the user's service (the default config's two models and every
    keyword, say) but on the virtual microphone, with its sockets and clips in the bench's own folder."""
    user = tmp_path / "etc"
    user.mkdir()
    (user / "config.yaml").write_text(yaml.safe_dump({
        "inputs": [{"name": "kitchen", "source": "mic", "device": "USB", "block_ms": 20}],
        "models": [{"path": "models/a.onnx", "latency_ms": 480}],
        "keywords": [{"name": "yes", "threshold": 0.7}],
        "bus": {"endpoint": "ipc:///run/streamd/events", "scores": True},
        "clips": {"enabled": True, "dir": "/var/lib/streamd/clips"},
    }))
    folder = tmp_path / "bench"
    folder.mkdir()
    raw = yaml.safe_load(bench_copy_of_config(user / "config.yaml", folder).read_text())
    assert raw["inputs"] == [{"name": "mic", "source": "mic", "block_ms": 20}]  # the default device: the virtual mic
    assert raw["models"] == [{"path": str(user / "models" / "a.onnx"), "latency_ms": 480}]
    assert raw["keywords"] == [{"name": "yes", "threshold": 0.7}]
    assert raw["bus"] == {"endpoint": f"ipc://{folder}/events", "scores": True}
    assert raw["clips"] == {"enabled": True, "dir": str(folder / "clips")}
    assert raw["control"] == {"endpoint": f"ipc://{folder}/control"} and raw["logging"] == {"level": "WARNING"}


def test_the_default_config_copied_for_the_bench_is_a_valid_config(tmp_path):
    from streamd.config import load_config

    repo = Path(__file__).resolve().parents[1]
    config = load_config(bench_copy_of_config(repo / "config.yaml", tmp_path))
    assert [Path(m.path).name for m in config.models] == ["streamd-sat.onnx", "streamd-alarm.onnx"]
    assert all(Path(m.path).is_file() for m in config.models) and len(config.keywords) == 11
    assert [(i.name, i.source) for i in config.inputs] == [("mic", "mic")]


def test_cpu_split_by_thread_name():
    before = {10: ("streamd", 1.0), 11: ("audio-mic", 2.0), 12: ("capture-mic", 0.5), 13: ("source-f", 0.0)}
    after = {10: ("streamd", 1.5), 11: ("audio-mic", 2.25), 12: ("capture-mic", 0.5), 13: ("source-f", 0.125),
             14: ("audio-mic", 0.0625), 15: ("ZMQbg/IO/0", 0.5)}  # a reopened stream's thread counts from 0
    assert split_cpu_s(10, before, after, 1.0) == {"main": 0.5, "audio": 0.4375, "other": 0.0625}
    assert split_cpu_s(10, before, after, 0.5)["other"] == 0.0  # never below 0 (ticks are counted per thread)


def test_microphone_sections_without_pulseaudio_are_skipped_with_a_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no pulseaudio, pactl, paplay, pacat
    model = tiny_model.build(tmp_path / "tiny.onnx")
    assert main(["--only", "mic,latency", str(model)]) == 0
    err = capsys.readouterr().err
    for section in ("mic", "latency"):
        assert f"{section}: skipped, it needs pulseaudio and pulseaudio-utils" in err


def test_resample_section_times_each_device_rate(tmp_path, capsys):
    """`--only resample` needs no model file to be loadable: one row per device rate, with the filter's taps
    per output and a time per 10 ms block that is a real measurement (positive, below the block itself)."""
    out = tmp_path / "bench.json"
    assert main(["--only", "resample", "--repeats", "3", "--json", str(out), str(tmp_path / "unused.onnx")]) == 0
    rows = json.loads(out.read_text())["resample"]
    assert [r["in_rate_hz"] for r in rows] == [8000, 22050, 44100, 48000]
    assert [r["taps_per_output"] for r in rows] == [21, 28, 56, 61]  # 2 * 10 * max(up, down) + 1 taps over up phases
    assert all(0 < r["median_us_per_block"] <= r["p95_us_per_block"] for r in rows)
    assert all(r["median_us_per_block"] < 10_000 for r in rows)  # real time: under the 10 ms a block lasts
    assert "44100  16000" in capsys.readouterr().out


def test_paced_steps_come_once_per_hop_in_real_time(tmp_path):
    """`--only paced` steps each model as the service does, one step per hop of audio with the thread asleep in
    between: 5 warm-up and 6 timed steps at the tiny model's 100 ms hop take ~1.1 s of wall time, where back to
    back they take milliseconds. Only the hops named by --latencies are timed (not the tiny model's 200 ms)."""
    import time

    import tiny_model

    from streamd.bench import bench_paced

    tiny = tiny_model.build(tmp_path / "tiny.onnx")
    t0 = time.monotonic()
    rows = bench_paced([tiny], [100.0], max_steps=6)
    assert time.monotonic() - t0 >= 1.0
    assert [(r["hop_ms"], r["steps"]) for r in rows] == [(100.0, 6)]
    row = rows[0]
    assert 0 < row["back_to_back_cpu_ms_per_hop"] < 100
    assert 0 < row["paced_cpu_ms_per_hop"] <= row["paced_p95_cpu_ms_per_hop"]
    assert row["paced_cpu_ms_per_audio_s"] == pytest.approx(10 * row["paced_cpu_ms_per_hop"])
    ratio = row["paced_cpu_ms_per_hop"] / row["back_to_back_cpu_ms_per_hop"]
    assert row["paced_over_back_to_back"] == pytest.approx(ratio)


def test_paced_rows_at_long_hops_take_fewer_steps():
    from streamd.bench import paced_steps

    assert paced_steps(30, 160) == 30  # 4.8 s
    assert paced_steps(30, 960) == 15  # 15 s instead of 29
    assert paced_steps(30, 1920) == 10  # never fewer than 10
    assert paced_steps(5, 1920) == 5  # nor more than asked
