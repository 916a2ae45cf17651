"""`streamd bench`: how fast the models and the service are, as tables for people and JSON for files.

    streamd bench                                   # every section, every models/*.onnx
    streamd bench --only hop,sidebyside models/streamd-sat.onnx models/streamd-sat-int8.onnx
    streamd bench --only service --seconds 60 --json bench.json

Sections:
  hop         per model file and accepted hop: median / p95 ms per hop and per second of audio on one
              onnxruntime thread; state bytes; FLOPs per second of audio and the share of this CPU's
              measured single-thread peak they need (the physical floor).
  sidebyside  per streaming model: the cost of recomputing its whole receptive field at every hop (a
              fresh state fed one window) against its cached streaming cost, as a ratio.
  paced       per model and hop of --latencies: CPU time of a step when steps come once per hop in real time,
              the thread asleep in between, as in the service, beside back-to-back steps of the same run
              (the hop section's way). A step after 160 ms of sleep starts with cold caches and costs more.
  turns       the models at their smallest common hop, timed in turns (chunks of 20 steps each, three
              rounds): each model's time as a ratio to the first one's, which holds on a busy machine where
              absolute times do not.
  throughput  seconds of audio per wall second of `streamd run --fast`, one stream.
  service     CPU % of one core and peak RSS of `streamd run` on real-time file sources (1, 4, 16).
  mic         the same for one stream from the virtual microphone (a PulseAudio null sink; tests/vmic.py).
  latency     end of a sound in the audio -> its event at a SUB socket, through the virtual microphone.
  resample    the capture's resampler, per 10 ms block from a microphone that only opens at another rate
              (8, 22.05, 44.1, 48 kHz) to the models' 16 kHz; needs no model.

Service-level sections are in streamd/benchservice.py; they run `streamd run` as a subprocess.
No torch anywhere: this is the service's own view of cost.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from streamd.config import ModelConfig
from streamd.contract import ContractError
from streamd.model import Model, load_model

DEFAULT_SERVICE_MODEL = Path(ModelConfig.path)  # the default config's model
SECTIONS = ("hop", "paced", "sidebyside", "turns", "throughput", "service", "mic", "callback", "latency", "resample")
PEAK_MATMUL_N = 512  # 0.27 GFLOP per product: steady-state kernels, yet short enough (~2 ms) that the
PEAK_REPEATS = 60  # best of many escapes preemption on a shared machine

_PEAK_CODE = f"""
import time, numpy as np
n = {PEAK_MATMUL_N}
a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32); b = a.T.copy()
a @ b
best = min(((lambda t0: (a @ b, time.perf_counter() - t0)[1])(time.perf_counter())) for _ in range({PEAK_REPEATS}))
print(2 * n**3 / best / 1e9)
"""


# ------------------------------------------------------------------------------------ machine


def peak_gflops() -> dict:
    """Single-thread float32 matmul GFLOP/s, best of PEAK_REPEATS, from numpy's BLAS (a child process, so it sees
    one thread) and from onnxruntime's own kernels (which may use wider vector units than the BLAS
    build picked). The peak is the larger: the floor must not be flattered by a slow reference."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", _PEAK_CODE], env=env, capture_output=True, text=True, check=True)
    result = {"numpy_gflops": float(out.stdout.strip())}
    try:
        result["onnxruntime_gflops"] = _ort_matmul_gflops(PEAK_MATMUL_N)
    except ImportError:
        pass
    result["peak_gflops"] = max(result.values())
    return result


def _ort_matmul_gflops(n: int) -> float:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "peak",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = min(proto.ir_version, 9)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    feeds = {"a": a, "b": a.T.copy()}
    session.run(None, feeds)
    best = float("inf")
    for _ in range(PEAK_REPEATS):
        t0 = time.perf_counter()
        session.run(None, feeds)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


# the instruction sets that decide int8 and float32 speed (and int8 results: onnxruntime keeps 8-bit
# weights exact only with a dot-product instruction), best first, as /proc/cpuinfo names them
ISA_FLAGS = (("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"), ("avx512f", "AVX-512"), ("avx2", "AVX2"),
             ("asimddp", "Arm dot product"), ("asimd", "Arm NEON"))


def machine() -> dict:
    model_name, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model_name:
                model_name = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    isa = next((name for flag, name in ISA_FLAGS if flag in flags), "")
    return {"cpu": model_name or platform.processor(), "isa": isa, "cores": os.cpu_count(),
            "python": platform.python_version(), "load_avg_1m": round(os.getloadavg()[0], 2)}


# ------------------------------------------------------------------------------------------ hop


WARMUP_STEPS = 5  # untimed first steps: they allocate


def time_steps(model: Model, hop_samples: int, repeats: int, fresh_state: bool = False,
               clock=time.perf_counter, paced: bool = False) -> np.ndarray:
    """ms of each of `repeats` steps on noise by `clock` (wall time, or time.thread_time for this thread's CPU),
    carrying the state (or from zeros every step); back to back, or paced: one step per hop of audio in real
    time with the thread asleep in between, as the service's main loop steps."""
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((repeats + WARMUP_STEPS, hop_samples))).astype(np.float32)
    interval_s = hop_samples / model.info.sample_rate_hz
    state = model.new_state()
    times_ms = []
    due_s = time.monotonic()
    for i, hop in enumerate(audio):
        if fresh_state:
            state = model.new_state()
        t0 = clock()
        _, state = model.step(hop, state)
        if i >= WARMUP_STEPS:
            times_ms.append(1000.0 * (clock() - t0))
        if paced:
            due_s += interval_s
            time.sleep(max(0.0, due_s - time.monotonic()))
    return np.asarray(times_ms)


PACED_ROW_S = 15.0  # at long hops fewer paced steps (at least PACED_MIN_STEPS), so that a row takes about this long
PACED_MIN_STEPS = 10


def paced_steps(max_steps: int, hop_ms: float) -> int:
    """Timed steps for one paced row: max_steps, fewer where they would take longer than PACED_ROW_S."""
    return min(max_steps, max(PACED_MIN_STEPS, int(PACED_ROW_S * 1000.0 / hop_ms)))


def bench_paced(paths: list[Path], latencies_ms: list[float], max_steps: int) -> list[dict]:
    rows = []
    for path in paths:
        free = load_model(path, threads=1)
        for hop in free.info.hop_samples:
            hop_ms = free.info.hop_ms(hop)
            if not any(abs(hop_ms - ms) < 0.5 for ms in latencies_ms):
                continue
            steps = paced_steps(max_steps, hop_ms)
            wall_s = (steps + WARMUP_STEPS) * hop_ms / 1000
            print(f"paced: {path.name} at {hop_ms:g} ms, {steps} steps (~{wall_s:.0f} s)", file=sys.stderr, flush=True)
            model = free.with_hop(hop)  # as the service loads it
            back_to_back = float(np.median(time_steps(model, hop, steps, clock=time.thread_time)))
            paced = time_steps(model, hop, steps, clock=time.thread_time, paced=True)
            median = float(np.median(paced))
            rows.append({"model": path.name, "precision": precision_of(path), "hop_ms": hop_ms, "hop_samples": hop,
                         "steps": steps, "back_to_back_cpu_ms_per_hop": back_to_back,
                         "paced_cpu_ms_per_hop": median, "paced_p95_cpu_ms_per_hop": float(np.percentile(paced, 95)),
                         "paced_cpu_ms_per_audio_s": median * 1000.0 / hop_ms,
                         "paced_over_back_to_back": median / back_to_back})
    return rows


def precision_of(path: Path) -> str:
    return "int8" if "int8" in path.stem else "float32"


def time_interleaved(models: list[Model], hop_samples: int, repeats: int, chunk: int = 20) -> list[np.ndarray]:
    """time_steps of several models in alternating chunks of steps, so that a busy neighbour slows them alike."""
    times = [[] for _ in models]
    for _ in range(max(repeats // chunk, 1)):
        for model, out in zip(models, times):
            out.append(time_steps(model, hop_samples, chunk))
    return [np.concatenate(t) for t in times]


def bench_hop(paths: list[Path], repeats: int, peak: float, vs_free_hop: bool = False) -> list[dict]:
    from streamd.flops import flops_per_step

    rows = []
    for path in paths:
        free = load_model(path, threads=1)
        rate = free.info.sample_rate_hz
        for hop in free.info.hop_samples:
            model = free.with_hop(hop)  # as the service loads it
            free_times = None
            if vs_free_hop:  # against the session that takes every hop, timed in turns with the fixed one
                times, free_times = time_interleaved([model, free], hop, repeats)
            else:
                times = time_steps(model, hop, repeats)
            hops_per_s = rate / hop
            try:
                flops = flops_per_step(path, hop)
            except ImportError:  # onnx not installed: timing still stands
                flops = None
            median = float(np.median(times))
            row = {
                "model": path.name, "family": model.info.family, "precision": precision_of(path),
                "hop_ms": model.info.hop_ms(hop), "hop_samples": hop,
                "median_ms_per_hop": median, "p95_ms_per_hop": float(np.percentile(times, 95)),
                "median_ms_per_audio_s": median * hops_per_s, "p95_ms_per_audio_s": float(np.percentile(times, 95)) * hops_per_s,
                "state_bytes": model.state_bytes,
                "mflop_per_hop": None if flops is None else flops / 1e6,
                "mflop_per_audio_s": None if flops is None else flops * hops_per_s / 1e6,
            }
            if free_times is not None:
                row["free_hop_median_ms_per_hop"] = float(np.median(free_times))
            if flops is not None:
                # share of one core at peak that the arithmetic alone needs, and how close we run to it
                row["floor_core_pct"] = 100.0 * flops * hops_per_s / (peak * 1e9)
                row["achieved_gflops"] = flops / (median / 1000.0) / 1e9
            rows.append(row)
    return rows


def bench_turns(paths: list[Path], repeats: int, rounds: int = 3) -> list[dict]:
    """Every model at the smallest hop they all accept, fixed as the service loads it, timed in turns with the
    others (time_interleaved), `rounds` times; per round, each model's median and its ratio to the first's."""
    free = [load_model(path, threads=1) for path in paths]
    rates = {m.info.sample_rate_hz for m in free}
    common = set.intersection(*(set(m.info.hop_samples) for m in free))
    if len(rates) > 1 or not common:
        raise ContractError("turns: the models share no hop at one sample rate: "
                            + "; ".join(f"{p.name} {list(m.info.hop_samples)} at {m.info.sample_rate_hz} Hz" for p, m in zip(paths, free)))
    hop = min(common)
    models = [m.with_hop(hop) for m in free]
    rows = []
    for round_ in range(1, rounds + 1):
        medians = [float(np.median(t)) for t in time_interleaved(models, hop, repeats)]
        for path, model, median in zip(paths, models, medians):
            rows.append({"round": round_, "model": path.name, "hop_ms": model.info.hop_ms(hop), "median_ms_per_hop": median,
                         "median_ms_per_audio_s": median * model.info.sample_rate_hz / hop, "ratio_to_first": median / medians[0]})
    return rows


def bench_sidebyside(paths: list[Path], hop_rows: list[dict], repeats: int) -> list[dict]:
    """Streaming models: recomputing the receptive field every hop vs the cached step."""
    rows = []
    for path in paths:
        model = load_model(path, threads=1)
        info = model.info
        window = int(round(info.receptive_field_s * info.sample_rate_hz))
        covering = [h for h in info.hop_samples if h >= window]
        window_hop = covering[0] if covering else info.hop_samples[-1]
        own = [r for r in hop_rows if r["model"] == path.name]
        if len(own) < 2 or window_hop == info.hop_samples[0] or len({r["mflop_per_hop"] for r in own}) == 1:
            continue  # same work at every hop: a windowed model, already recomputing its window each hop
        recompute_ms = float(np.median(time_steps(model.with_hop(window_hop), window_hop, max(repeats // 4, 10),
                                                  fresh_state=True)))
        for row in hop_rows:
            if row["model"] != path.name or row["hop_samples"] >= window_hop:
                continue
            hops_per_s = info.sample_rate_hz / row["hop_samples"]
            rows.append({
                "model": path.name, "hop_ms": row["hop_ms"], "window_ms": info.hop_ms(window_hop),
                "streaming_ms_per_audio_s": row["median_ms_per_audio_s"],
                "recompute_ms_per_audio_s": recompute_ms * hops_per_s,
                "ratio": recompute_ms * hops_per_s / row["median_ms_per_audio_s"],
            })
    return rows


def bench_families(repeats: int) -> dict:
    """export/bench_families.py's per-family numbers (torch builds the untrained models), run as a
    child process so that streamd itself never imports torch."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "families.json"
        done = subprocess.run([sys.executable, "-m", "export.bench_families", "--json", str(out),
                               "--repeats", str(max(repeats // 4, 20))], text=True)
        if done.returncode != 0:
            raise RuntimeError(f"export.bench_families exited {done.returncode}")
        return json.loads(out.read_text())


RESAMPLE_RATES_HZ = (8000, 22050, 44100, 48000)  # device rates that PortAudio may only offer


def bench_resample(blocks: int, out_rate_hz: int = 16000, block_s: float = 0.01) -> list[dict]:
    """Time StreamResampler.process on consecutive blocks of noise, as the capture callback feeds it."""
    from streamd.resample import StreamResampler

    rows = []
    for rate in RESAMPLE_RATES_HZ:
        block = round(rate * block_s)
        audio = 0.1 * np.random.default_rng(0).standard_normal((blocks + WARMUP_STEPS, block))
        resampler = StreamResampler(rate, out_rate_hz)
        times = []
        for i, samples in enumerate(audio):
            t0 = time.perf_counter()
            resampler.process(samples)
            if i >= WARMUP_STEPS:  # warm-up blocks fill the filter's history
                times.append(time.perf_counter() - t0)
        median_us = float(np.median(times)) * 1e6
        rows.append({"in_rate_hz": rate, "out_rate_hz": out_rate_hz, "block_ms": block_s * 1000,
                     "taps_per_output": resampler.taps_per_phase, "median_us_per_block": median_us,
                     "p95_us_per_block": float(np.percentile(times, 95)) * 1e6,
                     "core_pct": median_us / (block_s * 1e6) * 100})
    return rows


# ---------------------------------------------------------------------------------------- tables


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """columns: (key, header, format). Missing values print as '-'."""
    def cell(row, key, fmt):
        value = row.get(key)
        return "-" if value is None else format(value, fmt)

    body = [[cell(r, k, f) for k, _, f in columns] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, (_, h, _) in enumerate(columns)]
    lines = ["  ".join(h.rjust(w) for (_, h, _), w in zip(columns, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(b, widths)) for b in body]
    return "\n".join(lines)


HOP_COLUMNS = [("model", "model", "s"), ("precision", "dtype", "s"), ("hop_ms", "hop ms", ".0f"),
               ("median_ms_per_hop", "ms/hop", ".3f"), ("p95_ms_per_hop", "p95", ".3f"),
               ("free_hop_median_ms_per_hop", "free-hop ms/hop", ".3f"),
               ("median_ms_per_audio_s", "ms/audio-s", ".2f"), ("p95_ms_per_audio_s", "p95", ".2f"),
               ("state_bytes", "state B", "d"), ("mflop_per_audio_s", "MFLOP/audio-s", ".1f"),
               ("floor_core_pct", "floor %core", ".3f"), ("achieved_gflops", "GFLOP/s", ".2f")]
TURNS_COLUMNS = [("round", "round", "d"), ("model", "model", "s"), ("hop_ms", "hop ms", ".0f"),
                 ("median_ms_per_hop", "ms/hop", ".3f"), ("median_ms_per_audio_s", "ms/audio-s", ".2f"),
                 ("ratio_to_first", "x first", ".2f")]
SIDE_COLUMNS = [("model", "model", "s"), ("hop_ms", "hop ms", ".0f"), ("window_ms", "window ms", ".0f"),
                ("streaming_ms_per_audio_s", "cached ms/audio-s", ".2f"),
                ("recompute_ms_per_audio_s", "recompute ms/audio-s", ".2f"), ("ratio", "ratio", ".1f")]
PACED_COLUMNS = [("model", "model", "s"), ("precision", "dtype", "s"), ("hop_ms", "hop ms", ".0f"),
                 ("back_to_back_cpu_ms_per_hop", "back-to-back ms/hop", ".3f"),
                 ("paced_cpu_ms_per_hop", "paced ms/hop", ".3f"),
                 ("paced_p95_cpu_ms_per_hop", "p95", ".3f"), ("paced_cpu_ms_per_audio_s", "paced ms/audio-s", ".2f"),
                 ("paced_over_back_to_back", "x", ".2f")]
RESAMPLE_COLUMNS = [("in_rate_hz", "from Hz", "d"), ("out_rate_hz", "to Hz", "d"), ("block_ms", "block ms", ".0f"),
                    ("taps_per_output", "taps", "d"), ("median_us_per_block", "us/block", ".0f"),
                    ("p95_us_per_block", "p95", ".0f"), ("core_pct", "% core", ".2f")]


# ------------------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="streamd bench", description="Benchmark models and the service.")
    parser.add_argument("models", nargs="*", type=Path, help="ONNX model files (default: models/*.onnx)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {','.join(SECTIONS)}")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--repeats", type=int, default=200,
                        help="timed steps per model and hop (hop section), per model and round (turns); "
                             "x10 blocks per rate (resample)")
    parser.add_argument("--vs-free-hop", action="store_true",
                        help="hop section: also time, in turns with it, one session that takes every hop (what the "
                             "service's fixed hop saves)")
    parser.add_argument("--seconds", type=float, default=60.0, help="real-time run length per service and mic row (s)")
    parser.add_argument("--streams", default="1,4,16", help="stream counts for the service section")
    parser.add_argument("--audio-s", type=float, default=600.0, help="audio length for the throughput section (s)")
    parser.add_argument("--utterances", type=int, default=20, help="sounds played per latency setting")
    parser.add_argument("--keyword", default="yes", help="keyword spoken (espeak-ng) in the latency section")
    parser.add_argument("--latencies", default="160,480,960",
                        help="latency settings (ms) for the latency and paced sections")
    parser.add_argument("--paced-steps", type=int, default=30, help="timed steps per model and hop (paced section; "
                        f"fewer at long hops, at least {PACED_MIN_STEPS}, so that a row takes ~{PACED_ROW_S:g} s)")
    parser.add_argument("--threshold", type=float, default=0.5, help="keyword threshold in the latency section")
    parser.add_argument("--group-wait-s", type=float, help="latency section: put the keyword in a group whose choice "
                        "waits this long (s; config.yaml's commands: 0.48); default: in none")
    parser.add_argument("--families", action="store_true",
                        help="sidebyside: also run `python -m export.bench_families` (needs torch; a separate process)")
    parser.add_argument("--service-model", type=Path, help="model for service sections (default: the first model "
                                                          f"given, else {DEFAULT_SERVICE_MODEL})")
    parser.add_argument("--mic-config", type=Path,
                        help="mic section: run this service config (its models, keywords, tags, settings; e.g. "
                             "config.yaml) on the virtual microphone instead of the service model alone")
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in args.only if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; expected some of {', '.join(SECTIONS)}")
    if not args.models:
        args.models = sorted(Path("models").glob("*.onnx"))
        if args.service_model is None and DEFAULT_SERVICE_MODEL in args.models:
            args.service_model = DEFAULT_SERVICE_MODEL  # not streamd-alarm.onnx, first by name, which hears no keyword
    if not args.models:
        parser.error("no model files given and none in models/")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict = {"machine": machine(), "command": ["streamd", "bench", *(argv if argv is not None else sys.argv[1:])]}
    try:
        if "hop" in args.only or "sidebyside" in args.only:
            results["peak_1thread"] = peaks = peak_gflops()
            peak = peaks["peak_gflops"]
            print(f"CPU: {results['machine']['cpu']}, single-thread float32 matmul: "
                  + ", ".join(f"{k.split('_')[0]} {v:.1f}" for k, v in peaks.items() if k != "peak_gflops")
                  + f" GFLOP/s; peak {peak:.1f}\n")
            hop_rows = bench_hop(args.models, args.repeats, peak, args.vs_free_hop)
            if "hop" in args.only:
                results["hop"] = hop_rows
                columns = [c for c in HOP_COLUMNS if c[0] != "free_hop_median_ms_per_hop" or args.vs_free_hop]
                print("per hop (1 onnxruntime thread)\n" + table(hop_rows, columns) + "\n")
            if "sidebyside" in args.only:
                results["sidebyside"] = side = bench_sidebyside(args.models, hop_rows, args.repeats)
                print("streaming cache vs recomputing the window\n" + table(side, SIDE_COLUMNS) + "\n")
                if args.families:
                    results["families"] = bench_families(args.repeats)
        if "paced" in args.only:
            results["paced"] = rows = bench_paced(args.models, [float(x) for x in args.latencies.split(",")],
                                                  args.paced_steps)
            print("paced: one step per hop in real time, as the service steps (CPU of this thread, 1 onnxruntime "
                  "thread)\n" + table(rows, PACED_COLUMNS) + "\n")
        if "turns" in args.only and len(args.models) < 2:
            print("turns: skipped, it compares two or more models\n", file=sys.stderr)
        elif "turns" in args.only:
            results["turns"] = turns = bench_turns(args.models, args.repeats)
            print("in turns (1 onnxruntime thread; x first: time per hop over the first model's, same round)\n"
                  + table(turns, TURNS_COLUMNS) + "\n")
        if "resample" in args.only:
            results["resample"] = rows = bench_resample(args.repeats * 10)
            print("resampler, per capture block (one thread)\n" + table(rows, RESAMPLE_COLUMNS) + "\n")
        service_sections = [s for s in args.only if s in ("throughput", "service", "mic", "callback", "latency")]
        if service_sections:
            from streamd import benchservice

            results.update(benchservice.run_sections(service_sections, args))
    except ContractError as err:
        print(f"streamd bench: {err}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
