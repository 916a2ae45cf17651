"""Evaluate any contract model file on shared-style data, through onnxruntime as the service runs it.

    python -m export.evaluate MODEL.onnx [MODEL2.onnx ...] --data ../shared/data [--data MORE ...] \\
        --split val --hop-ms 160 --out eval/ [--tasks kws,wakeword,tags,mixtures,alarms]

Every clip is streamed hop by hop from a zero state with the service's own loader and runner
(``streamd.model.load_model``, ``streamd.runner.StreamRunner``); keyword decisions use the service's
``KeywordTrigger`` and tag segments its ``TagSmoother``. No torch: a model file from anywhere that
follows the contract can be compared with ours on the same data and at the same hop.

Writes ``OUT/<model>.json`` and PNG plots per model, ``OUT/comparison.json`` for all of them, and
prints a summary table. docs/evaluation.md explains every number. The tasks live in ``export/evaluation/``:
``clips`` (which clips), ``streaming`` (through the model), ``decisions`` (the service's trigger and smoother
over the scores), ``context`` (what the tasks share), ``keywords``, ``tags``, ``alarms`` and ``plots``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from export.data.manifest import Clip
from export.data.rooms import DISTANCE_M, MODELS, Rooms
from export.evaluation.alarms import ALARM_FA_PER_H, eval_alarms
from export.evaluation.clips import select_sources
from export.evaluation.context import Context, noise_background
from export.evaluation.keywords import eval_kws, eval_wakeword
from export.evaluation.plots import plot_det, write_plots
from export.evaluation.streaming import HUM_HZ, Scorer
from export.evaluation.tags import TAG_PAD_S, eval_mixtures, eval_tags
from export.labels import COMMANDS, WAKE_WORD
from export.metrics import TARGET_FA_PER_H
from streamd.bench import machine
from streamd.config import KeywordDefaults
from streamd.model import load_model

TASKS = ("kws", "wakeword", "tags", "mixtures", "alarms")
PHASES = 4  # --phases: keyword and tag clips, alarm scenes and the negative stream at 0, 1/4, 1/2, 3/4 of a hop
TASK_FUNCTIONS = {"kws": eval_kws, "wakeword": eval_wakeword, "tags": eval_tags, "mixtures": eval_mixtures,
                  "alarms": eval_alarms}


def evaluate_model(path: Path, clips: list[Clip], groups: dict[Path, str], args: argparse.Namespace) -> dict:
    model = load_model(path, threads=1)
    hop_samples = round(args.hop_ms * model.info.sample_rate_hz / 1000)
    if hop_samples not in model.info.hop_samples:
        accepted = [round(model.info.hop_ms(h), 1) for h in model.info.hop_samples]
        raise SystemExit(f"{path}: hop {args.hop_ms} ms ({hop_samples} samples) is not one it accepts: {accepted} ms")
    model = model.with_hop(hop_samples)  # as the service loads it
    room = None if args.room_rt60_s is None else Rooms(args.room_rt60_s, args.room_distance_m,
                                                       model.info.sample_rate_hz, args.seed, model=args.room_model)
    ctx = Context(Scorer(model, hop_samples, args.split, args.pad, args.seed, args.gain_db, args.hum_db, args.dc_offset,
                         args.phases, room), clips, groups, args)
    if args.snr_db is not None:
        ctx.scorer.set_noise(noise_background(ctx), args.snr_db)
    result = {
        "model": str(path),
        "family": model.info.family,
        "hop_ms": args.hop_ms,
        "hop_samples": hop_samples,
        "receptive_field_s": model.info.receptive_field_s,
        "state_bytes": model.state_bytes,
        "labels": len(model.info.labels),
        "data": [str(d) for d in args.data],
        "split": args.split,
        "gain_db": args.gain_db,
        "snr_db": args.snr_db,
        "hum_db": args.hum_db,
        "dc_offset": args.dc_offset,
        "room": None if room is None else room.summary(),
        "tasks": {},
        "wall_s": {},
    }
    for task in args.tasks:
        start = time.perf_counter()
        result["tasks"][task] = TASK_FUNCTIONS[task](ctx)
        result["wall_s"][task] = round(time.perf_counter() - start, 2)
        if not args.quiet:
            print(f"{model.name}: {task} done in {result['wall_s'][task]:.1f} s", file=sys.stderr)
    result["compute_ms_per_audio_s"] = round(ctx.scorer.ms_per_audio_s, 3)
    result["machine"] = machine()  # compute, and int8 results, depend on the CPU
    return result


def span(pair: list[float] | None) -> str | None:
    """'lo-hi' for the comparison table (one cell)."""
    return f"{pair[0]:g}-{pair[1]:g}" if pair else None


def summary(result: dict) -> dict:
    """The few numbers compared across models."""
    t = result["tasks"]
    kws, wake, tags, mix, alarms = (t.get(k, {}) for k in TASKS)
    row = {"family": result["family"], "hop_ms": result["hop_ms"], "state_kB": round(result["state_bytes"] / 1024, 1),
           "ms_per_audio_s": result["compute_ms_per_audio_s"],
           "kws_acc_11": kws.get("accuracy_11"), "kws_acc_11_ci95": span(kws.get("accuracy_11_ci95")),
           "kws_acc_12": kws.get("accuracy_12"),
           "kws_acc_11_best_thr": kws.get("best_threshold_11", {}).get("accuracy_11")}
    for keyword, info in wake.get("keywords", {}).items():
        if keyword == WAKE_WORD or keyword not in COMMANDS:
            point = info[f"best_within_{TARGET_FA_PER_H}_fa_per_h"]
            row[f"{keyword}_frr_pct_at_{TARGET_FA_PER_H}fa_h"] = point["frr_pct"] if point else None
            row[f"{keyword}_frr_ci95_pct"] = span(point.get("frr_ci95_pct")) if point else None
            row[f"{keyword}_threshold"] = point["threshold"] if point else None
    row["tags_mAP"] = tags.get("clip_score_max", {}).get("mAP")
    row["tags_top1"] = tags.get("clip_score_max", {}).get("top1_accuracy")
    row["tags_top1_ci95"] = span(tags.get("clip_score_max", {}).get("top1_ci95"))
    row["tags_top1_balanced"] = tags.get("clip_score_max", {}).get("top1_balanced")
    row["mixture_event_f1"] = mix.get("event_f1_onset_offset", {}).get("f1")
    row["mixture_onset_f1"] = mix.get("event_f1_onset", {}).get("f1")
    row["mixture_detected_f1"] = mix.get("event_f1_detected", {}).get("f1")
    alarm_point = alarms.get(f"best_within_{ALARM_FA_PER_H:g}_false_starts_per_h") or {}
    row["smoke_alarm_detected_pct"] = alarm_point.get("detected_pct")
    row["smoke_alarm_threshold"] = alarm_point.get("threshold")
    return row


def print_table(rows: dict[str, dict]) -> None:
    names = list(rows)
    keys = list(dict.fromkeys(k for r in rows.values() for k in r))
    width = max(len(k) for k in keys)
    cols = [max(12, len(n)) for n in names]
    print(" " * width + "  " + "  ".join(n.rjust(c) for n, c in zip(names, cols)))
    for key in keys:
        cells = [rows[n].get(key) for n in names]
        text = ["-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in cells]
        print(key.ljust(width) + "  " + "  ".join(s.rjust(c) for s, c in zip(text, cols)))


def unique_stems(paths: list[Path]) -> list[str]:
    stems, seen = [], {}
    for p in paths:
        seen[p.stem] = seen.get(p.stem, 0) + 1
        stems.append(p.stem if seen[p.stem] == 1 else f"{p.stem}-{seen[p.stem]}")
    return stems


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m export.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", type=Path, help="contract ONNX model files")
    p.add_argument("--data", type=Path, required=True, action="append",
                   help="folder with manifest.csv (like ../shared/data), or a manifest; again for more, e.g. your "
                        "own recordings beside ../shared/data: their clips are pooled (the split applies to each)")
    p.add_argument("--split", choices=("val", "train", "all"), default="val",
                   help="validation clips only (default), training clips only (to measure the gap), or all clips")
    p.add_argument("--hop-ms", type=float, required=True, help="hop (latency quantum) in ms; same for every model")
    p.add_argument("--out", type=Path, required=True, help="folder for JSON and PNG results")
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    p.add_argument("--threshold", type=float, default=0.5, help="keyword score threshold (0..1) for accuracy")
    p.add_argument("--pad", choices=("zeros", "noise"), default="zeros",
                   help="what surrounds each keyword and tag clip: digital silence or -45 dBFS white noise")
    p.add_argument("--gain-db", type=float, default=0.0,
                   help="scale all audio read (clips, negatives, backgrounds) by this many dB, e.g. -25 for a far speaker")
    p.add_argument("--snr-db", type=float, default=None,
                   help="mix the split's noise/ recordings into every keyword clip and wake-word positive (through "
                        "their padding too), this many dB below the clip; negatives and tags stay as they are")
    p.add_argument("--hum-db", type=float, default=None,
                   help=f"add {HUM_HZ:g} Hz mains hum with harmonics (HUM_HARMONICS) at this many dBFS RMS to everything "
                        "streamed, as a humming microphone would, e.g. -40")
    p.add_argument("--dc-offset", type=float, default=0.0,
                   help="add this constant to every sample streamed, as a microphone's DC offset would, e.g. 0.05")
    p.add_argument("--room-rt60-s", type=float, default=None,
                   help="hear every clip read (clips, negatives, backgrounds) in a simulated room with this "
                        "reverberation time, e.g. 0.6: one of 16 drawn shoebox rooms (export.data.rooms, another room "
                        "model than training's), the talker --room-distance-m from the microphone")
    p.add_argument("--room-distance-m", type=float, nargs=2, default=DISTANCE_M, metavar=("MIN", "MAX"),
                   help="with --room-rt60-s: how far the sound is from the microphone (default %(default)s)")
    p.add_argument("--room-model", choices=MODELS, default="shoebox",
                   help="with --room-rt60-s: image-source rooms (default), or training's kind of room (a few "
                        "early reflections and a noise tail, export.data.augment) at the same times and "
                        "direct-to-reverberant ratios, to tell what a model learnt of rooms from what it learnt of "
                        "one room simulator")
    p.add_argument("--n-of-m", type=lambda s: tuple(int(x) for x in s.split("/")), default=None,
                   help="trigger N/M in hops, e.g. 2/3 (default: the service's KeywordTriggerConfig default)")
    p.add_argument("--refractory-s", type=float, default=None, help="trigger refractory in seconds (default: the service's)")
    p.add_argument("--speech-gate", type=float, default=KeywordDefaults.speech_gate,
                   help="keyword hops count only where the model's speech score reached this within --speech-gate-s "
                        "(default: the service's, %(default)s; 0 = off)")
    p.add_argument("--speech-gate-s", type=float, default=KeywordDefaults.speech_gate_s,
                   help="the speech gate's look-back in seconds (default: the service's, %(default)s)")
    p.add_argument("--pause-before", type=float, default=KeywordDefaults.pause_before,
                   help="keyword hops count only where the model's speech score fell below this (a pause), or the "
                        "audio was quiet (--pause-drop-db), in the hops ending --pause-before-s before them "
                        "(default: the service's, %(default)s; 0 = off)")
    p.add_argument("--pause-before-s", type=lambda s: tuple(float(x) for x in s.split("/")),
                   default=KeywordDefaults.pause_before_s,
                   help="the pause gate's window, FROM/TO seconds before the keyword hop's end (default: the "
                        "service's, 0.32/1.28)")
    p.add_argument("--pause-drop-db", type=float, default=KeywordDefaults.pause_drop_db,
                   help="audio this many dB below the word for 0.32 s is a pause too (default: the service's, "
                        "%(default)s; 0 = the speech score alone)")
    p.add_argument("--phases", type=int, default=PHASES,
                   help="play every keyword and tag clip, alarm scene and the negative stream this many times, each "
                        "starting hop/N later against the hop grid, and pool the counts (default %(default)s; 1 = "
                        "once): where a word falls in a hop changes its scores, and one phase's false accepts are a "
                        "small sample")
    p.add_argument("--tag-pad-s", type=float, default=TAG_PAD_S,
                   help="seconds of --pad streamed before and after each tag clip (default %(default)s): a sound "
                        "arrives into a running stream; 0 streams each clip alone from a zero state (before "
                        "session 45)")
    p.add_argument("--mixture-events", type=int, default=60, help="sounds inserted into the long mixture")
    p.add_argument("--seed", type=int, default=0, help="seed of the mixture and noise padding")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.phases < 1:
        p.error(f"--phases must be at least 1, got {args.phases}")
    if args.room_rt60_s is not None and not 0.05 <= args.room_rt60_s <= 2.0:
        p.error(f"--room-rt60-s must be between 0.05 and 2 s, got {args.room_rt60_s}")
    if not 0.1 <= args.room_distance_m[0] <= args.room_distance_m[1] <= 5.0:
        p.error(f"--room-distance-m needs 0.1 <= MIN <= MAX <= 5, got {list(args.room_distance_m)}")
    if args.tag_pad_s < 0:
        p.error(f"--tag-pad-s must be 0 or more, got {args.tag_pad_s}")
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        p.error(f"unknown task(s) {unknown}; choose from {list(TASKS)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.data = [d.expanduser().resolve() for d in args.data]
    clips, groups = select_sources(args.data, args.split)
    if not clips:
        raise SystemExit(f"no clips in {' + '.join(map(str, args.data))} for split {args.split!r}")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for path, stem in zip(args.models, unique_stems(args.models)):
        result = evaluate_model(path, clips, groups, args)
        result["plots"] = write_plots(result, args.out, stem)
        (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
        rows[stem] = summary(result)
    if len(rows) > 1:
        wake = {}
        for stem in rows:
            info = json.loads((args.out / f"{stem}.json").read_text())["tasks"].get("wakeword", {}).get("keywords", {})
            if WAKE_WORD in info:
                wake[stem] = info[WAKE_WORD]["table"]
        if wake:
            plot_det(wake, f"{WAKE_WORD}: DET at hop {args.hop_ms:g} ms", args.out / f"comparison_det_{WAKE_WORD}.png")
    comparison = {"hop_ms": args.hop_ms, "split": args.split, "data": [str(d) for d in args.data], "comparison": rows}
    (args.out / "comparison.json").write_text(json.dumps(comparison, indent=1) + "\n")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
