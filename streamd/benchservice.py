"""The service-level sections of `streamd bench`: run `streamd run` as a child and measure it.

throughput  audio seconds per wall second, one stream, as fast as inference goes: the pipeline in
            process (fast file source -> scheduler -> encoded events), and `streamd run --fast` over the
            same file with its start-up (and a 1 s file: start-up alone).
service     CPU time as % of one core (utime + stime from /proc over the measured span) and peak RSS
            (VmHWM) of a real-time run with 1, 4, 16 file inputs of the same audio.
mic         the same for one stream from the virtual microphone (tests/vmic.py) hearing that audio.
latency     through a PulseAudio null sink (tests/vmic.py): paplay a clip whose sound ends at a known
            time, take the time its event reaches a SUB socket; median / p95 per latency setting.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import soundfile
import yaml

SAMPLE_RATE_HZ = 16000
STARTUP_TIMEOUT_S = 60.0
RUN_COMMAND = [sys.executable, "-c", "import sys; from streamd.cli import main; sys.exit(main())", "run"]
HOLD_FOR_SUBSCRIBER = ["--wait-for-subscriber", "20"]  # audio starts once our SUB is subscribed


# ------------------------------------------------------------------------------------ helpers


def test_audio(seconds: float, sample_rate_hz: int = SAMPLE_RATE_HZ, burst_every_s: float = 5.0) -> np.ndarray:
    """Quiet noise with a 0.6 s 1 kHz burst every burst_every_s: something for the model to chew on."""
    rng = np.random.default_rng(0)
    n = int(seconds * sample_rate_hz)
    audio = 0.003 * rng.standard_normal(n)
    t = np.arange(n) / sample_rate_hz
    audio[(t % burst_every_s) < 0.6] += 0.3 * np.sin(2 * np.pi * 1000 * t[(t % burst_every_s) < 0.6])
    return audio.astype(np.float32)


def write_config(folder: Path, model: Path, inputs: list[dict], latency_ms: float, extra: dict | None = None) -> Path:
    config = {
        "inputs": inputs,
        "models": [{"path": str(Path(model).resolve()), "latency_ms": latency_ms, "threads": 1}],
        "keywords": [], "tags": [],
        "bus": {"endpoint": f"ipc://{folder}/events"},
        "control": {"endpoint": f"ipc://{folder}/control"},
        "heartbeat": {"interval_s": 3600.0},
        "logging": {"level": "WARNING"},
    }
    config.update(extra or {})
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _stat_cpu_s(stat: str) -> float:
    """utime + stime (s) from the text of a /proc stat file (the name in parentheses may hold spaces)."""
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    return _stat_cpu_s(Path(f"/proc/{pid}/stat").read_text())


def thread_cpu_s(pid: int) -> dict[int, tuple[str, float]]:
    """{thread id: (its system name, CPU s)} of a running process (names: streamd.threadname)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        out[int(task.name)] = (stat[stat.index("(") + 1:stat.rindex(")")], _stat_cpu_s(stat))
    return out


def split_cpu_s(pid: int, before: dict, after: dict, total_s: float) -> dict[str, float]:
    """total_s of CPU between two thread_cpu_s looks, split: the main thread (model steps, decisions, sockets),
    the threads that deliver audio (PortAudio's callback `audio-*`, file and stdin readers `source-*`), and the
    rest (capture supervisors, the sound server's client, ZeroMQ's I/O, threads that ended meanwhile). The rest is
    what the first two leave of the process's total: each thread's time is counted in whole clock ticks, so
    summing many small threads would lose up to a tick each."""
    parts = {"main": 0.0, "audio": 0.0}
    for tid, (name, cpu_s) in after.items():
        part = "main" if tid == pid else "audio" if name.startswith(("audio-", "source-")) else None
        if part is not None:
            parts[part] += cpu_s - before.get(tid, (name, 0.0))[1]
    return {**parts, "other": max(0.0, total_s - parts["main"] - parts["audio"])}


def proc_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def smallest_hop_ms(model: Path) -> float:
    from streamd.model import load_model

    info = load_model(model).info
    return info.hop_ms(info.hop_samples[0])


def _subscriber(endpoint: str):
    import zmq

    context = zmq.Context()
    sock = context.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(endpoint)
    return context, sock


def _wait_running(proc: subprocess.Popen, sock, timeout_s: float) -> None:
    """Block until the service publishes status "running" (models loaded, sockets bound, capture on)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamd exited with {proc.returncode} before it was running")
        if sock.poll(200):
            _, body = sock.recv_multipart()
            event = json.loads(body)
            if event["type"] == "status" and event.get("state") == "running":
                return
    raise RuntimeError(f"streamd did not report running within {timeout_s} s")


def _stop(proc: subprocess.Popen, timeout_s: float = 15.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


# ----------------------------------------------------------------------------------- sections


def pipeline_audio_s_per_s(model: Path, wav: Path, latency_ms: float) -> tuple[float, float]:
    """The service pipeline in this process: fast file source -> scheduler (model, every keyword
    trigger and tag smoother of the model) -> events, encoded as for the bus. Audio s per wall s and
    per CPU s of this process (the second is what a shared, busy machine cannot distort)."""
    from streamd.config import KeywordDefaults, TagDefaults, hop_samples_for_latency
    from streamd.contract import KIND_KEYWORD, KIND_TAG
    from streamd.events import Sequencer
    from streamd.model import load_model
    from streamd.scheduler import ModelSpec, Scheduler
    from streamd.sources import open_source

    free = load_model(model, threads=1)
    info = free.info
    hop = hop_samples_for_latency(info, latency_ms)
    spec = ModelSpec(free.name, free.with_hop(hop), hop)  # as the service loads it
    keywords = {n: (KeywordDefaults(), True) for n in info.names_of_kind(KIND_KEYWORD)}
    tags = {n: (TagDefaults(), True) for n in info.names_of_kind(KIND_TAG)}
    source = open_source(f"file:{wav}", "bench", info.sample_rate_hz, fast=True)
    scheduler = Scheduler([source], [spec], keywords, tags, max_lag_s=2.0)
    sequencer = Sequencer()
    t0, cpu0 = time.perf_counter(), time.process_time()
    source.start()
    try:
        while not scheduler.finished:
            for event in scheduler.tick():
                sequencer.encode(event)
    finally:
        source.stop()
    audio_s = source.ring.end_index / info.sample_rate_hz
    return audio_s / (time.perf_counter() - t0), audio_s / (time.process_time() - cpu0)


def bench_throughput(model: Path, audio_s: float) -> dict:
    """In-process pipeline speed, and `streamd run --fast` wall time with and without its start-up."""
    with tempfile.TemporaryDirectory(prefix="streamd-bench-") as tmp:
        folder = Path(tmp)
        latency_ms = smallest_hop_ms(model)
        walls = {}
        for name, seconds in (("startup", 1.0), ("long", audio_s)):
            wav = folder / f"{name}.wav"
            soundfile.write(wav, test_audio(seconds), SAMPLE_RATE_HZ, subtype="PCM_16")
            config = write_config(folder, model, [{"name": "file", "source": f"file:{wav}"}], latency_ms)
            t0 = time.monotonic()
            done = subprocess.run([*RUN_COMMAND, "--config", str(config), "--fast"], capture_output=True, text=True)
            walls[name] = time.monotonic() - t0
            if done.returncode != 0:
                raise RuntimeError(f"streamd run --fast exited {done.returncode}: {done.stderr.strip()[-400:]}")
        per_wall_s, per_cpu_s = pipeline_audio_s_per_s(model, folder / "long.wav", latency_ms)
        return {"model": model.name, "latency_ms": latency_ms, "audio_s": audio_s,
                "pipeline_audio_s_per_s": per_wall_s, "pipeline_audio_s_per_cpu_s": per_cpu_s, "cli_wall_s": walls["long"], "cli_startup_s": walls["startup"],
                "cli_audio_s_per_s": audio_s / walls["long"]}


def bench_service(model: Path, streams: int, seconds: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="streamd-bench-") as tmp:
        folder = Path(tmp)
        wav = folder / "audio.wav"
        soundfile.write(wav, test_audio(seconds + 30.0), SAMPLE_RATE_HZ, subtype="PCM_16")
        inputs = [{"name": f"s{i}", "source": f"file:{wav}"} for i in range(streams)]
        config = write_config(folder, model, inputs, smallest_hop_ms(model))
        row = _measure_run(config, folder, seconds, dict(os.environ))
        return {"model": model.name, "streams": streams, **row}


def bench_mic(model: Path, seconds: float, service_config: Path | None = None) -> dict:
    """One stream from the virtual microphone (a PulseAudio null sink, tests/vmic.py) hearing the bench audio:
    PortAudio's callback thread and the sound server's client thread count, as on a device. service_config: run
    that config's models, keywords, tags and settings instead of the model alone at its smallest hop."""
    virtual_mic = _virtual_mic_class()
    with tempfile.TemporaryDirectory(prefix="streamd-bench-") as tmp, virtual_mic() as vmic:
        folder = Path(tmp)
        wav = folder / "audio.wav"
        soundfile.write(wav, test_audio(seconds + 30.0), SAMPLE_RATE_HZ, subtype="PCM_16")
        if service_config is None:
            config = write_config(folder, model, [{"name": "mic", "source": "mic"}], smallest_hop_ms(model))
        else:
            config = bench_copy_of_config(service_config, folder)
        player = vmic.play(wav, wait=False)
        try:
            row = _measure_run(config, folder, seconds, {**os.environ, **vmic.env})
        finally:
            player.kill()
            player.wait(10)
        name = model.name if service_config is None else service_config.name
        return {"model": name, "source": "virtual mic", **row}


def bench_copy_of_config(path: Path, folder: Path) -> Path:
    """A user's config as the bench runs it: its models, keywords, tags, scheduler and its first input's capture
    settings (block_ms, device rate) as they are; one input, the default microphone (the virtual one), socket
    endpoints and clips in folder, quiet logging, no heartbeat."""
    raw = yaml.safe_load(path.read_text()) or {}
    base = path.resolve().parent  # a config's relative paths are relative to its folder
    for model in raw.get("models") or []:
        model["path"] = str((base / Path(model["path"]).expanduser()).resolve())
    first = (raw.get("inputs") or [{}])[0]
    raw["inputs"] = [{"name": "mic", "source": "mic",
                      **{k: first[k] for k in ("block_ms", "device_sample_rate_hz") if first.get(k) is not None}}]
    raw["bus"] = {**(raw.get("bus") or {}), "endpoint": f"ipc://{folder}/events"}
    raw["control"] = {**(raw.get("control") or {}), "endpoint": f"ipc://{folder}/control"}
    raw["heartbeat"] = {"interval_s": 3600.0}
    raw["logging"] = {"level": "WARNING"}
    raw["clips"] = {**(raw.get("clips") or {}), "dir": str(folder / "clips")}
    out = folder / "config.yaml"
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


def bench_callback(seconds: float, hop_s: float = 0.16) -> dict:
    """In this process, a microphone on the virtual one while it plays the bench audio: this thread's CPU inside
    PortAudio's callback per block (`time.thread_time` around `MicSource._callback`), and the reader's conversion
    of the queued blocks when it looks once per hop_s, as the service's main loop does (streamd/lazyring.py)."""
    virtual_mic = _virtual_mic_class()
    with tempfile.TemporaryDirectory(prefix="streamd-bench-") as tmp, virtual_mic() as vmic:
        wav = Path(tmp) / "audio.wav"
        soundfile.write(wav, test_audio(seconds + 30.0), SAMPLE_RATE_HZ, subtype="PCM_16")
        player = vmic.play(wav, wait=False)
        # the ALSA PulseAudio plugin reads the environment when the stream opens; restored afterwards
        with mock.patch.dict(os.environ, vmic.env):
            try:
                from streamd.capture import MicSource  # imports sounddevice: PortAudio starts with the server up

                return _time_callback(MicSource("bench", SAMPLE_RATE_HZ, ring_seconds=10.0), seconds, hop_s)
            finally:
                player.kill()
                player.wait(10)


def _time_callback(mic, seconds: float, hop_s: float) -> dict:
    spent = {"callback_s": 0.0, "callbacks": 0, "convert_s": 0.0, "looks": 0}
    callback = mic._callback

    def timed(*args) -> None:
        started = time.thread_time()
        callback(*args)
        spent["callback_s"] += time.thread_time() - started
        spent["callbacks"] += 1

    mic._callback = timed
    mic.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while mic.ring.end_index == 0:  # the first callback of an idle sound server takes up to ~2 s
            if time.monotonic() > deadline:
                raise RuntimeError("no audio from the virtual microphone")
            time.sleep(0.05)
        spent.update(callback_s=0.0, callbacks=0)
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            time.sleep(hop_s)
            started = time.thread_time()
            mic.ring.end_index  # converts what was queued since the last look
            spent["convert_s"] += time.thread_time() - started
            spent["looks"] += 1
        wall_s = time.monotonic() - t0
    finally:
        mic.stop()
    return {"block_ms": round(mic.block_s * 1000, 1), "seconds": round(wall_s, 2),
            "callbacks_per_s": spent["callbacks"] / wall_s,
            "callback_us": 1e6 * spent["callback_s"] / max(1, spent["callbacks"]),
            "callback_pct_of_core": 100.0 * spent["callback_s"] / wall_s, "hop_ms": 1000 * hop_s,
            "convert_us_per_hop": 1e6 * spent["convert_s"] / max(1, spent["looks"]),
            "convert_pct_of_core": 100.0 * spent["convert_s"] / wall_s}


def _virtual_mic_class():
    """The tests' virtual microphone class (tests/vmic.py; needs pulseaudio and pulseaudio-utils)."""
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from vmic import VirtualMic

    return VirtualMic


def _measure_run(config: Path, folder: Path, seconds: float, env: dict) -> dict:
    """`streamd run` with config for seconds after it is running: CPU % of one core, peak RSS, threads."""
    context, sock = _subscriber(f"ipc://{folder}/events")
    proc = subprocess.Popen([*RUN_COMMAND, "--config", str(config), *HOLD_FOR_SUBSCRIBER],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        _wait_running(proc, sock, STARTUP_TIMEOUT_S)
        startup_rss_kib = proc_kib(proc.pid, "VmRSS")
        cpu0, threads0, t0 = proc_cpu_s(proc.pid), thread_cpu_s(proc.pid), time.monotonic()
        time.sleep(seconds)
        cpu1, threads1, t1 = proc_cpu_s(proc.pid), thread_cpu_s(proc.pid), time.monotonic()
        parts = split_cpu_s(proc.pid, threads0, threads1, cpu1 - cpu0)
        hwm_kib, threads = proc_kib(proc.pid, "VmHWM"), proc_kib(proc.pid, "Threads")
    finally:
        code = _stop(proc)
        sock.close()
        context.term()
    return {"seconds": round(t1 - t0, 2), "cpu_pct_of_core": 100.0 * (cpu1 - cpu0) / (t1 - t0),
            **{f"{part}_cpu_pct_of_core": 100.0 * used_s / (t1 - t0) for part, used_s in parts.items()},
            "peak_rss_mib": hwm_kib / 1024, "startup_rss_mib": startup_rss_kib / 1024, "threads": threads,
            "exit_code": code}


# --------------------------------------------------------------------------------------- latency


def sound_end_s(audio: np.ndarray, sample_rate_hz: int, floor_db: float = -35.0) -> float:
    """Time just after the last sample within |floor_db| of the clip's peak: where the word ends."""
    level = np.abs(audio) / (np.max(np.abs(audio)) + 1e-12)
    loud = np.flatnonzero(level > 10 ** (floor_db / 20))
    return (loud[-1] + 1) / sample_rate_hz if len(loud) else 0.0


def keyword_clip(folder: Path, word: str) -> tuple[Path, float]:
    """espeak-ng says `word` after 0.5 s of silence; returns (16 kHz WAV, end of the word in s)."""
    raw = folder / f"{word}-raw.wav"
    with open(raw, "wb") as out:
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "--stdout", word], stdout=out, check=True)
    path = folder / f"{word}.wav"
    subprocess.run(["sox", "-q", str(raw), "-r", str(SAMPLE_RATE_HZ), "-c", "1", "-b", "16", str(path),
                    "pad", "0.5", "1.0", "gain", "-n", "-3"], check=True)
    audio, rate = soundfile.read(path, dtype="float32")
    return path, sound_end_s(audio, rate)


def bench_latency(model: Path, keyword: str, latencies_ms: list[float], utterances: int, threshold: float,
                  group_wait_s: float | None = None) -> list[dict]:
    """group_wait_s: the keyword in a group (docs/service.md "One word, one command"), so that its event waits
    this long for a likelier one; None: in none, published as it fires."""
    rows = []
    grouped = {} if group_wait_s is None else {"group": "bench", "group_wait_s": group_wait_s}
    virtual_mic = _virtual_mic_class()
    with tempfile.TemporaryDirectory(prefix="streamd-bench-") as tmp, virtual_mic() as vmic:
        folder = Path(tmp)
        clip, end_s = keyword_clip(folder, keyword)
        for latency_ms in latencies_ms:
            config = write_config(folder, model, [{"name": "mic", "source": "mic"}], latency_ms,
                                  {"keywords": [{"name": keyword, "threshold": threshold, "n_of_m": [1, 1],
                                                 "refractory_s": 0.5, **grouped}]})
            context, sock = _subscriber(f"ipc://{folder}/events")
            proc = subprocess.Popen([*RUN_COMMAND, "--config", str(config), *HOLD_FOR_SUBSCRIBER],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **vmic.env})
            delays, misses = [], 0
            try:
                _wait_running(proc, sock, STARTUP_TIMEOUT_S)
                for _ in range(utterances):
                    t_play = time.monotonic()
                    player = vmic.play(clip, wait=False)
                    t_end = t_play + end_s
                    got = _first_keyword(sock, keyword, t_play + end_s + 3.0)
                    player.wait(10)
                    if got is None:
                        misses += 1
                    else:
                        delays.append(1000.0 * (got - t_end))
                    time.sleep(0.8)  # let the refractory period and the model's context clear
            finally:
                _stop(proc)
                sock.close()
                context.term()
            rows.append({"model": model.name, "keyword": keyword, "latency_ms": latency_ms,
                         "group_wait_s": group_wait_s,
                         "utterances": utterances, "detected": len(delays), "missed": misses,
                         "median_ms": float(np.median(delays)) if delays else None,
                         "p95_ms": float(np.percentile(delays, 95)) if delays else None,
                         "min_ms": float(np.min(delays)) if delays else None})
    return rows


def _first_keyword(sock, keyword: str, deadline: float) -> float | None:
    while (left := deadline - time.monotonic()) > 0:
        if sock.poll(int(left * 1000) + 1):
            _, body = sock.recv_multipart()
            received = time.monotonic()
            event = json.loads(body)
            if event["type"] == "keyword" and event.get("keyword") == keyword:
                return received
    return None


# ------------------------------------------------------------------------------------------ run

THROUGHPUT_COLUMNS = [("model", "model", "s"), ("latency_ms", "hop ms", ".0f"), ("audio_s", "audio s", ".0f"),
                      ("pipeline_audio_s_per_s", "pipeline audio-s/s", ".0f"),
                      ("pipeline_audio_s_per_cpu_s", "per CPU-s", ".0f"), ("cli_wall_s", "CLI wall s", ".2f"),
                      ("cli_startup_s", "CLI 1 s file", ".2f"), ("cli_audio_s_per_s", "CLI audio-s/s", ".0f")]
CPU_SPLIT_COLUMNS = [("cpu_pct_of_core", "CPU % core", ".2f"), ("main_cpu_pct_of_core", "main", ".2f"),
                     ("audio_cpu_pct_of_core", "audio", ".2f"), ("other_cpu_pct_of_core", "other", ".2f")]
CPU_SPLIT_NOTE = ("main: the main loop (model steps, decisions, sockets); audio: the threads that deliver audio "
                  "(PortAudio's callback, file readers); other: the rest (capture supervisor, sound server client, "
                  "ZeroMQ I/O)\n")
SERVICE_COLUMNS = [("model", "model", "s"), ("streams", "streams", "d"), ("seconds", "s", ".0f"),
                   *CPU_SPLIT_COLUMNS, ("peak_rss_mib", "peak RSS MiB", ".1f"),
                   ("threads", "threads", "d")]
MIC_COLUMNS = [("model", "model", "s"), ("source", "source", "s"), ("seconds", "s", ".0f"),
               *CPU_SPLIT_COLUMNS, ("peak_rss_mib", "peak RSS MiB", ".1f"),
               ("threads", "threads", "d")]
CALLBACK_COLUMNS = [("block_ms", "block ms", ".0f"), ("callbacks_per_s", "callbacks/s", ".0f"),
                    ("callback_us", "µs per callback", ".1f"), ("callback_pct_of_core", "% core", ".2f"),
                    ("hop_ms", "reader every ms", ".0f"), ("convert_us_per_hop", "µs per look", ".0f"),
                    ("convert_pct_of_core", "% core", ".2f")]
LATENCY_COLUMNS = [("model", "model", "s"), ("keyword", "keyword", "s"), ("latency_ms", "hop ms", ".0f"),
                   ("group_wait_s", "group wait s", ".2f"),
                   ("detected", "detected", "d"), ("missed", "missed", "d"), ("median_ms", "median ms", ".0f"),
                   ("p95_ms", "p95 ms", ".0f"), ("min_ms", "min ms", ".0f")]


def run_sections(sections: list[str], args) -> dict:
    from streamd.bench import table

    model = args.service_model or args.models[0]
    results: dict = {}
    if "throughput" in sections:
        row = bench_throughput(model, args.audio_s)
        results["throughput"] = [row]
        print("throughput, --fast, one stream\n" + table([row], THROUGHPUT_COLUMNS) + "\n")
    if "service" in sections:
        rows = [bench_service(model, int(n), args.seconds) for n in args.streams.split(",")]
        results["service"] = rows
        print("whole service, real-time file sources\n" + table(rows, SERVICE_COLUMNS) + "\n" + CPU_SPLIT_NOTE)
    needs_mic = [s for s in ("mic", "callback", "latency") if s in sections]
    if needs_mic and not _virtual_mic_class().available():
        for section in needs_mic:
            print(f"{section}: skipped, it needs pulseaudio and pulseaudio-utils (scripts/setup.sh installs them)\n",
                  file=sys.stderr)
        sections = [s for s in sections if s not in needs_mic]
    if "mic" in sections:
        rows = [bench_mic(model, args.seconds, args.mic_config)]
        results["mic"] = rows
        print("whole service, one stream from the virtual microphone\n" + table(rows, MIC_COLUMNS) + "\n"
              + CPU_SPLIT_NOTE)
    if "callback" in sections:
        rows = [bench_callback(args.seconds)]
        results["callback"] = rows
        print("capture callback (thread CPU inside it) and the reader's conversion, virtual microphone\n"
              + table(rows, CALLBACK_COLUMNS) + "\n")
    if "latency" in sections:
        rows = bench_latency(model, args.keyword, [float(x) for x in args.latencies.split(",")],
                             args.utterances, args.threshold, args.group_wait_s)
        results["latency"] = rows
        print("keyword end -> event at a SUB socket, through the virtual microphone\n"
              + table(rows, LATENCY_COLUMNS) + "\n")
    return results
