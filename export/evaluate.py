"""Evaluate any contract model file on shared-style data, through onnxruntime as the service runs it.

    python -m export.evaluate MODEL.onnx [MODEL2.onnx ...] --data ../shared/data --split val \\
        --hop-ms 160 --out eval/ [--tasks kws,wakeword,tags,mixtures,alarms]

Every clip is streamed hop by hop from a zero state with the service's own loader and runner
(``streamd.model.load_model``, ``streamd.runner.StreamRunner``); keyword decisions use the service's
``KeywordTrigger`` and tag segments its ``TagSmoother``. No torch: a model file from anywhere that
follows the contract can be compared with ours on the same data and at the same hop.

Writes ``OUT/<model>.json`` and PNG plots per model, ``OUT/comparison.json`` for all of them, and
prints a summary table. docs/evaluation.md explains every number.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.data.audio import load_audio
from export.data.manifest import Clip, read_manifest
from export.labels import COMMANDS, SILENCE, UNKNOWN, WAKE_WORD, tag_name
from export.metrics import (COLLAR_S, OFF_FRACTION, TAG_THRESHOLDS, TARGET_FA_PER_H, Event, accuracy, average_precision, best_threshold,
                            boundary_errors, confusion_matrix, f1_score, kws_predict, match_events, match_overlaps, operating_point,
                            tag_operating_points, wilson_interval)
from streamd.bench import machine
from streamd.config import KeywordDefaults, TagDefaults
from streamd.contract import KIND_KEYWORD, KIND_TAG
from streamd.gate import gate_scores, window_hops
from streamd.model import Model, load_model
from streamd.runner import StreamRunner
from streamd.smoothing import TagSmoother, TagSmootherConfig
from streamd.triggers import KeywordTrigger, KeywordTriggerConfig

log = logging.getLogger(__name__)

TASKS = ("kws", "wakeword", "tags", "mixtures", "alarms")
NO_KEYWORD = "no_keyword"
SPEECH_TAG = "speech"
PAD_S = 0.5  # silence streamed before and after each keyword clip
SILENCE_RANGE_DB = 6.0  # energy rule: a clip whose loud and quiet frames differ by less is silence
FRAME_SAMPLES = 400  # 25 ms frames for the energy rules
DET_THRESHOLDS = tuple(np.round(np.arange(0.05, 0.951, 0.05), 3)) + (0.97, 0.98, 0.99, 0.995, 0.999)
POSITIVE_ALIASES = {WAKE_WORD: (WAKE_WORD, "hey_" + WAKE_WORD)}  # clip labels that contain the keyword
# and the look-alike folders export.data.synth_alarms writes, so its output can be evaluated as negatives
NEGATIVE_GROUPS = ("speech", "noise", "tags", "kws/precise/not_wake_word", "beep", "chime", "squeak",
                   "lookalike")
TAG_GROUPS = ("tags", "speech")  # tags/esc50, tags/urbansound8k and any folder of one's own under tags/
ACTIVE_DB = -30.0  # mixture events: frames within this of the clip's loudest frame are the sound
BACKGROUND_RMS = 10 ** (-45 / 20)  # mixtures: background level (-45 dBFS)
EVENT_RMS = 10 ** (-25 / 20)  # mixtures: active level of each inserted sound (20 dB above background)
TAG_WINDOW_S = 0.48  # the tag smoother's window, config.yaml's tag_defaults.window_s (3 hops at 160 ms)
ALARM_TAG = "smoke_alarm"
ALARM_SEED = 8201  # held-out draws of export.data.synth_alarms (its training cache uses seed 0)
ALARM_CLIPS_PER_KIND = 20  # of the temporal-three (smoke) and temporal-four (CO) patterns
ALARM_SECONDS = 10.0
ALARM_LEAD_S = 2.0  # background before each alarm
ALARM_WINDOW_HOPS = 5  # 0.8 s at 160 ms: longer than the 0.5 s gap between temporal-three beeps
ALARM_OFF_FRACTION = 0.5
ALARM_GROUP_GAP_S = 1.0  # beeps closer than this are one group (temporal-three gap 0.5 s, pause 1.5 s)
ALARM_LATE_S = 1.5  # a group counts as detected if the tag is on before this long after its last beep
ALARM_FA_PER_H = 2.0  # operating point: most groups detected within this many false starts/h (a miss costs more)
ALARM_THRESHOLDS = tuple(np.round(np.arange(0.3, 0.951, 0.05), 3))
# Alarms the default generator does not make (real horns sit anywhere around 3 kHz; the low-frequency alarm
# of sleeping areas is a 520 Hz square wave): name -> (kind, piezo fundamental range Hz), temporal-three each.
ALARM_VARIANTS = {"t3 at 2.5-2.9 kHz": ("t3", (2500.0, 2900.0)), "t3 at 3.5-4.3 kHz": ("t3", (3500.0, 4300.0)),
                  "t3low (520 Hz square)": ("t3low", (2900.0, 3500.0))}
ALARM_VARIANT_CLIPS = 10
ALARM_VARIANT_SEED = 8202


# ---------------------------------------------------------------------------------------------
# Data: which clips, from where


def in_group(clip: Clip, groups: dict[Path, str], prefix: str) -> bool:
    """Is the clip in folder prefix ('kws/gsc_v2', 'speech', ...) of the data root, or below it?"""
    group = groups.get(clip.path, "")
    return group == prefix or group.startswith(prefix + "/")


def select_clips(root: Path, split: str) -> tuple[list[Clip], dict[Path, str]]:
    """The manifest's clips (all, or those export.data.splits puts in split) and each clip's folder
    as written in the manifest ('kws/gsc_v2/yes'), which holds even where folders are links.
    Long noise recordings are split in time, not by file: they stay, and clip_audio cuts them."""
    manifest = root / "manifest.csv"
    clips = read_manifest(manifest)
    with open(manifest, newline="") as f:
        folders = [Path(row["path"]).parent.as_posix() for row in csv.DictReader(f)]
    groups = {c.path: folder for c, folder in zip(clips, folders)}
    if split != "all":
        from export.data.splits import is_time_split, split_of  # training's rule: validation stays unseen

        clips = [c for c in clips if is_time_split(c) or split_of(c) == split]
    return clips, groups


def clip_audio(clip: Clip, sample_rate_hz: int, split: str) -> np.ndarray:
    """Decoded (cached) audio; of a long noise recording only the split's part."""
    audio = load_audio(clip.path, sample_rate_hz)
    if split == "all":
        return audio
    from export.data.splits import is_time_split, time_split

    return time_split(audio, split) if is_time_split(clip) else audio


def keyword_positives(clips: list[Clip], groups: dict[Path, str], keyword: str) -> list[Clip]:
    """Clips under kws/ that say keyword: its own class, an alias ('hey_computer'), or an
    _unknown_ clip whose word= is the keyword."""
    names = POSITIVE_ALIASES.get(keyword, (keyword,))
    return [c for c in clips if in_group(c, groups, "kws") and (c.label in names or c.attr("word") == keyword)]


# ---------------------------------------------------------------------------------------------
# Streaming: the service's runner over one clip or one long stream


@dataclass
class Scored:
    scores: np.ndarray  # float32 [n_hops, n_labels]
    end_samples: np.ndarray  # int64 [n_hops], stream position after each hop


HUM_HZ = 50.0  # --hum-db: mains hum of a fixed make, so that runs compare
HUM_HARMONICS = {1: 1.0, 2: 0.5, 3: 1 / 3, 5: 0.2}  # order -> amplitude


def mains_hum_at(start_sample: int, n: int, sample_rate_hz: int, rms_db: float) -> np.ndarray:
    """n samples of HUM_HZ hum from stream position start_sample (so blocks join), rms_db dBFS RMS."""
    t = (start_sample + np.arange(n)) / sample_rate_hz
    hum = sum(a * np.sin(2 * np.pi * k * HUM_HZ * t) for k, a in HUM_HARMONICS.items())
    return hum * 10 ** (rms_db / 20) / np.sqrt(sum(a * a for a in HUM_HARMONICS.values()) / 2)


class Scorer:
    """One model at one hop; counts compute time per second of audio, caches per-clip streams."""

    def __init__(self, model: Model, hop_samples: int, split: str = "all", pad: str = "zeros", seed: int = 0,
                 gain_db: float = 0.0, hum_db: float | None = None, dc_offset: float = 0.0):
        self.model = model
        self.hum_db = hum_db  # mains hum (dBFS RMS) under every stream played, as a humming microphone adds it
        self.dc_offset = dc_offset  # added to every sample played, as a microphone's DC offset
        self.background: np.ndarray | None = None  # set_noise: mixed into the clips asked for noisy
        self.snr_db = 0.0
        self.gain = 10 ** (gain_db / 20)  # on every clip read, as a quieter (farther) or louder microphone would
        self.split = split
        self.hop_samples = hop_samples
        self.sample_rate_hz = model.info.sample_rate_hz
        self.pad = pad
        self.seed = seed
        self.compute_s = 0.0
        self.audio_s = 0.0
        self._cache: dict[tuple, Scored] = {}

    def audio(self, clip: Clip) -> np.ndarray:
        audio = clip_audio(clip, self.sample_rate_hz, self.split)
        return audio if self.gain == 1.0 else np.clip(audio * self.gain, -1.0, 1.0).astype(np.float32)

    def stream(self, blocks) -> Scored:
        """Push blocks (arrays) through one fresh stream; the tail is zero-padded to a whole hop."""
        runner = StreamRunner(self.model, self.hop_samples)
        results = []
        n_samples = 0
        for block in blocks:
            results += self._push(runner, self._microphone(block, n_samples))
            n_samples += len(block)
        tail = (-n_samples) % self.hop_samples
        if tail:
            results += self._push(runner, np.zeros(tail, np.float32))
        if not results:
            n_labels = len(self.model.info.labels)
            return Scored(np.zeros((0, n_labels), np.float32), np.zeros(0, np.int64))
        return Scored(np.stack([r.scores for r in results]), np.array([r.end_sample for r in results], np.int64))

    def _microphone(self, block: np.ndarray, start_sample: int) -> np.ndarray:
        """block as the microphone delivers it: with its hum and DC offset, if any, clipped to [-1, 1]."""
        if self.hum_db is None and not self.dc_offset:
            return block
        out = block.astype(np.float64) + self.dc_offset
        if self.hum_db is not None:
            out += mains_hum_at(start_sample, len(block), self.sample_rate_hz, self.hum_db)
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    def _push(self, runner: StreamRunner, block: np.ndarray):
        start = time.perf_counter()
        results = runner.push(block)
        self.compute_s += time.perf_counter() - start
        self.audio_s += len(block) / self.sample_rate_hz
        return results

    def set_noise(self, background: np.ndarray, snr_db: float) -> None:
        """Clips asked for noisy get an excerpt of background, snr_db below the clip's own power."""
        if not len(background) or not np.any(background):
            raise SystemExit("--snr-db needs noise/ recordings in the data's split to mix in")
        self.background, self.snr_db = background, snr_db

    def clip(self, clip: Clip, pad_s: float = 0.0, noisy: bool = False) -> Scored:
        """A clip with pad_s of padding (zeros or low noise) before and after, from a zero state; noisy
        (after set_noise): with the background mixed in over the clip and its padding."""
        noisy = noisy and self.background is not None
        key = (clip.path, pad_s, noisy)
        if key not in self._cache:
            audio = self.audio(clip)
            n_pad = round(pad_s * self.sample_rate_hz)
            if pad_s > 0:
                pad = self.padding(n_pad, str(clip.path))
                audio = np.concatenate([pad[0], audio, pad[1]])
            if noisy:
                rng = np.random.default_rng([self.seed, sum(str(clip.path).encode())])
                audio = with_noise(audio, slice(n_pad, len(audio) - n_pad), self.background, self.snr_db, rng)
            self._cache[key] = self.stream([audio])
        return self._cache[key]

    def padding(self, n_samples: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        if self.pad == "zeros":
            return np.zeros(n_samples, np.float32), np.zeros(n_samples, np.float32)
        rng = np.random.default_rng([self.seed, sum(name.encode())])
        noise = (BACKGROUND_RMS * rng.standard_normal(2 * n_samples)).astype(np.float32)
        return noise[:n_samples], noise[n_samples:]

    @property
    def ms_per_audio_s(self) -> float:
        return 1000.0 * self.compute_s / self.audio_s if self.audio_s else 0.0


def with_noise(audio: np.ndarray, part: slice, background: np.ndarray, snr_db: float,
               rng: np.random.Generator) -> np.ndarray:
    """audio plus a random excerpt of background (looped if shorter) over its whole length, scaled so that
    audio[part] (the clip without its padding) is snr_db above the excerpt's power over the same part."""
    start = int(rng.integers(len(background)))
    noise = np.resize(np.roll(background, -start), len(audio)).astype(np.float64)
    signal_power = np.mean(audio[part].astype(np.float64) ** 2)
    noise_power = max(np.mean(noise[part] ** 2), 1e-12)
    scale = np.sqrt(signal_power / noise_power / 10 ** (snr_db / 10))
    return np.clip(audio + scale * noise, -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Energy rules and the service's keyword trigger over score sequences


def frame_db(audio: np.ndarray, frame_samples: int = FRAME_SAMPLES) -> np.ndarray:
    n = max(1, len(audio) // frame_samples)
    frames = np.resize(audio, n * frame_samples).reshape(n, frame_samples) if len(audio) else np.zeros((1, 1))
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-10)


def is_silence_by_energy(audio: np.ndarray) -> bool:
    """Stationary background has a small range between its loud (95th pct) and quiet (10th pct)
    frames; speech has tens of dB. On kws/gsc_v2, 95% of _silence_ clips span < 6 dB, 99% of
    spoken clips more."""
    db = frame_db(audio)
    return float(np.percentile(db, 95) - np.percentile(db, 10)) < SILENCE_RANGE_DB


def speech_gate(args: argparse.Namespace) -> dict:
    """The speech gate the keyword scores went through (streamd.gate; 0: none)."""
    return {"speech_gate": args.speech_gate, "speech_gate_s": args.speech_gate_s}


def trigger_config(threshold: float, n_of_m=None, refractory_s=None) -> KeywordTriggerConfig:
    """The service's trigger config at threshold; its defaults unless n_of_m/refractory_s are given."""
    extra = {k: v for k, v in (("n_of_m", n_of_m), ("refractory_s", refractory_s)) if v is not None}
    return KeywordTriggerConfig(threshold=threshold, **extra)


def detections(scores: np.ndarray, end_samples: np.ndarray, name: str, cfg: KeywordTriggerConfig,
               sample_rate_hz: int, hop_samples: int) -> list[int]:
    """Where the service's KeywordTrigger fires over one score sequence: the end sample of each firing hop.

    Only hops within a margin after a hop at or above threshold are fed: elsewhere the trigger sees
    nothing but misses, which only re-arm it (after M of them) and let time pass (counted by
    end_sample, which is fed as is). So the result equals feeding every hop, much faster."""
    hits = scores >= cfg.threshold
    if not hits.any():
        return []
    m = cfg.n_of_m[1]
    margin = m + int(np.ceil(cfg.refractory_s * sample_rate_hz / hop_samples)) + 1
    fed = np.convolve(hits.astype(np.int64), np.ones(margin + 1, np.int64))[: len(hits)] > 0
    trigger = KeywordTrigger(name, cfg, sample_rate_hz)
    return [int(end_samples[i]) for i in np.flatnonzero(fed)
            if trigger.update(float(scores[i]), int(end_samples[i])) is not None]


def count_detections(scores: np.ndarray, end_samples: np.ndarray, name: str, cfg: KeywordTriggerConfig,
                     sample_rate_hz: int, hop_samples: int) -> int:
    return len(detections(scores, end_samples, name, cfg, sample_rate_hz, hop_samples))


def ci95(correct: np.ndarray) -> list[float]:
    """The 95 % interval of the fraction of clips right (metrics.wilson_interval), for the JSON."""
    return [round(v, 4) for v in wilson_interval(int(np.sum(correct)), int(np.size(correct)))]


def det_table(positives: list[Scored], negative: Scored, label_index: int, name: str, negative_hours: float,
              sample_rate_hz: int, hop_samples: int, thresholds=DET_THRESHOLDS, n_of_m=None,
              refractory_s=None) -> list[dict]:
    """Per threshold: false-reject % over positive clips (no detection anywhere in the clip's
    stream) and false accepts per hour of the negative stream."""
    rows = []
    for t in thresholds:
        cfg = trigger_config(float(t), n_of_m, refractory_s)
        rejected = sum(
            count_detections(p.scores[:, label_index], p.end_samples, name, cfg, sample_rate_hz, hop_samples) == 0
            for p in positives
        )
        fa = count_detections(negative.scores[:, label_index], negative.end_samples, name, cfg, sample_rate_hz,
                              hop_samples) if len(negative.scores) else 0
        rows.append({
            "threshold": float(t),
            "false_rejects": int(rejected),
            "frr_pct": round(100.0 * rejected / len(positives), 3) if positives else None,
            "frr_ci95_pct": [round(100.0 * v, 1) for v in wilson_interval(rejected, len(positives))] if positives else None,
            "false_accepts": int(fa),
            "fa_per_h": round(fa / negative_hours, 4) if negative_hours > 0 else None,
            # a score stuck high fires once and then never re-arms: this exposes it
            "negative_hops_above_pct": round(100.0 * float(np.mean(negative.scores[:, label_index] >= t)), 3)
            if len(negative.scores) else None,
        })
    return rows


# ---------------------------------------------------------------------------------------------
# Tasks


@dataclass
class Context:
    scorer: Scorer
    clips: list[Clip]
    groups: dict[Path, str]  # clip path -> folder relative to the data root
    args: argparse.Namespace
    tag_thresholds: dict[str, float] = dataclasses.field(default_factory=dict)  # set by the tags task
    negative: NegativeStream | None = None  # shared by the wakeword and alarms tasks

    @property
    def model(self) -> Model:
        return self.scorer.model

    def label_index(self, name: str) -> int | None:
        names = self.model.info.label_names
        return names.index(name) if name in names else None

    @property
    def tag_window_hops(self) -> int:
        """The tag smoother's window at this hop: TAG_WINDOW_S, as the service turns seconds into hops."""
        return smoother_config(self.scorer.hop_samples, self.scorer.sample_rate_hz).window_hops

    @property
    def speech_index(self) -> int | None:
        """The model's speech tag, if it has one."""
        return self.label_index(SPEECH_TAG) if SPEECH_TAG in self.model.info.names_of_kind(KIND_TAG) else None

    def gated(self, scored: Scored) -> Scored:
        """Keyword scores as the service's triggers see them: 0 where the speech gate is closed
        (streamd.gate); unchanged for a model without a speech tag, as in the service."""
        speech = self.speech_index
        if speech is None or self.args.speech_gate <= 0:
            return scored
        hops = window_hops(self.args.speech_gate_s, self.scorer.hop_samples, self.scorer.sample_rate_hz)
        scores = scored.scores.copy()
        for name in self.model.info.names_of_kind(KIND_KEYWORD):
            i = self.label_index(name)
            scores[:, i] = gate_scores(scores[:, i], scored.scores[:, speech], self.args.speech_gate, hops)
        return Scored(scores, scored.end_samples)

    def progress(self, iterable, desc: str, total=None, unit="clip"):
        from tqdm import tqdm

        return tqdm(iterable, desc=f"{self.model.name} {desc}", total=total, unit=unit, file=sys.stderr,
                    disable=self.args.quiet, leave=False, dynamic_ncols=True)


def eval_kws(ctx: Context) -> dict:
    clips = [c for c in ctx.clips if in_group(c, ctx.groups, "kws/gsc_v2")]
    present = [k for k in COMMANDS if ctx.label_index(k) is not None]
    if not clips or not present:
        return {"skipped": "no kws/gsc_v2 clips" if not clips else "the model has none of the ten commands"}
    labels11 = list(COMMANDS) + [NO_KEYWORD]
    labels12 = list(COMMANDS) + [SILENCE, UNKNOWN]
    speech = ctx.speech_index
    max_scores, speechlike, truth12 = [], [], []
    for clip in ctx.progress(clips, "kws"):
        scored = ctx.gated(ctx.scorer.clip(clip, PAD_S, noisy=True))
        peak = scored.scores.max(axis=0)
        max_scores.append([peak[i] if (i := ctx.label_index(k)) is not None else 0.0 for k in COMMANDS])
        speechlike.append(peak[speech] >= 0.5 if speech is not None else not is_silence_by_energy(ctx.scorer.audio(clip)))
        truth12.append(labels12.index(clip.label) if clip.label in labels12 else labels12.index(UNKNOWN))
    max_scores, truth12 = np.array(max_scores, np.float32), np.array(truth12)
    truth11 = np.minimum(truth12, len(COMMANDS))
    pred11 = kws_predict(max_scores, ctx.args.threshold)
    pred12 = np.where(pred11 < len(COMMANDS), pred11, np.where(speechlike, labels12.index(UNKNOWN), labels12.index(SILENCE)))
    best_t, best_acc = best_threshold(max_scores, truth11)
    conf12 = confusion_matrix(truth12, pred12, len(labels12))
    return {
        "n_clips": len(clips),
        "threshold": ctx.args.threshold,
        "accuracy_11": round(accuracy(truth11, pred11), 4),
        "accuracy_11_ci95": ci95(truth11 == pred11),
        "accuracy_12": round(accuracy(truth12, pred12), 4),
        "accuracy_12_ci95": ci95(truth12 == pred12),
        "best_threshold_11": {"threshold": best_t, "accuracy_11": round(best_acc, 4)},
        "silence_rule": (f"'{SPEECH_TAG}' tag max >= 0.5 means unknown" if speech is not None else
                         f"energy: 95th-10th percentile frame level < {SILENCE_RANGE_DB} dB means silence"),
        "stream": f"{PAD_S} s of {ctx.scorer.pad} before and after each clip, max score over the stream",
        **speech_gate(ctx.args),
        "missing_keywords": [k for k in COMMANDS if k not in present],
        "per_class_accuracy_12": {l: round(float(conf12[i, i] / conf12[i].sum()), 4) if conf12[i].sum() else None
                                  for i, l in enumerate(labels12)},
        "errors": [{"clip": ctx.groups[c.path] + "/" + c.path.name, "truth": labels11[t], "predicted": labels11[p],
                    "top_score": round(float(s.max()), 3)}
                   for c, t, p, s in zip(clips, truth11, pred11, max_scores) if t != p],
        "labels_11": labels11,
        "confusion_11": confusion_matrix(truth11, pred11, len(labels11)).tolist(),
        "labels_12": labels12,
        "confusion_12": conf12.tolist(),
    }


@dataclass
class NegativeStream:
    scored: Scored
    hours: float
    names: list[str]  # the clips in stream order, as folder/file under the data root
    starts: np.ndarray  # int64: the stream sample each clip starts at

    def where(self, end_samples: list[int], sample_rate_hz: int) -> list[dict]:
        """Each stream position as the clip it falls in and the second within that clip."""
        index = np.searchsorted(self.starts, end_samples, side="right") - 1
        return [{"clip": self.names[i], "at_s": round(float(e - self.starts[i]) / sample_rate_hz, 2)}
                for i, e in zip(index, end_samples)]


def negative_stream(ctx: Context) -> NegativeStream:
    """speech/, noise/, tags/ and not-wake-word clips, sorted by path, as one long stream."""
    if ctx.negative is not None:
        return ctx.negative
    clips = sorted((c for c in ctx.clips if any(in_group(c, ctx.groups, g) for g in NEGATIVE_GROUPS)),
                   key=lambda c: str(c.path))
    lengths = []

    def blocks():
        for clip in ctx.progress(clips, "wakeword negatives"):
            audio = ctx.scorer.audio(clip)
            lengths.append(len(audio))
            yield audio

    scored = ctx.scorer.stream(blocks())
    hours = len(scored.end_samples) * ctx.scorer.hop_samples / ctx.scorer.sample_rate_hz / 3600
    names = [f"{ctx.groups.get(c.path, '')}/{c.path.name}".lstrip("/") for c in clips]
    ctx.negative = NegativeStream(scored, hours, names, np.cumsum([0] + lengths[:-1], dtype=np.int64))
    return ctx.negative


def false_accepts_where(negative: NegativeStream, scores: Scored, label_index: int, name: str,
                        cfg: KeywordTriggerConfig, sample_rate_hz: int, hop_samples: int) -> dict:
    """Where the trigger fires in the negative stream: counts by dataset folder ('speech', 'tags/esc50',
    'kws/precise', ...), and every place."""
    places = negative.where(detections(scores.scores[:, label_index], scores.end_samples, name, cfg, sample_rate_hz,
                                       hop_samples), sample_rate_hz)
    by_source = Counter("/".join(p["clip"].split("/")[:-1][:2]) for p in places)
    return {"by_source": dict(by_source.most_common()), "places": places}


def eval_wakeword(ctx: Context) -> dict:
    keywords = ctx.model.info.names_of_kind(KIND_KEYWORD)
    if not keywords:
        return {"skipped": "the model has no keywords"}
    stream = negative_stream(ctx)
    negative, hours = ctx.gated(stream.scored), stream.hours
    out = {
        "negative_clips": len(stream.names),
        "negative_hours": round(hours, 4),
        "trigger": dataclasses.asdict(trigger_config(0.5, ctx.args.n_of_m, ctx.args.refractory_s))
        | {"threshold": "swept"} | speech_gate(ctx.args),
        "keywords": {},
    }
    for keyword in ctx.progress(keywords, "wakeword thresholds", unit="keyword"):
        positives = [ctx.gated(ctx.scorer.clip(c, PAD_S, noisy=True)) for c in keyword_positives(ctx.clips, ctx.groups, keyword)]
        rows = det_table(positives, negative, ctx.label_index(keyword), keyword, hours, ctx.scorer.sample_rate_hz,
                         ctx.scorer.hop_samples, n_of_m=ctx.args.n_of_m, refractory_s=ctx.args.refractory_s)
        at_default = next((r for r in rows if r["threshold"] == ctx.args.threshold), None)
        if at_default is not None:  # what fired, so that a real "on" in unscreened speech can be told from a mistake
            at_default["false_accepts_where"] = false_accepts_where(
                stream, negative, ctx.label_index(keyword), keyword,
                trigger_config(ctx.args.threshold, ctx.args.n_of_m, ctx.args.refractory_s),
                ctx.scorer.sample_rate_hz, ctx.scorer.hop_samples)
        out["keywords"][keyword] = {
            "positives": len(positives),
            f"best_within_{TARGET_FA_PER_H}_fa_per_h": operating_point(rows),
            "at_threshold": at_default,
            "table": rows,
        }
    return out


def tag_truth(clip: Clip, groups: dict[Path, str]) -> str | None:
    if in_group(clip, groups, "speech"):
        return SPEECH_TAG
    if in_group(clip, groups, "tags"):
        return tag_name(clip.label)
    return None


def tag_source(group: str) -> str:
    """The dataset a tag clip comes from: its folder's first two parts under tags/ ('tags/esc50'), else the first."""
    parts = group.split("/")
    return "/".join(parts[:2]) if parts[0] == "tags" else parts[0]


def eval_tags(ctx: Context) -> dict:
    tags = list(ctx.model.info.names_of_kind(KIND_TAG))
    clips = [c for c in ctx.clips if any(in_group(c, ctx.groups, g) for g in TAG_GROUPS)]
    truths = [tag_truth(c, ctx.groups) for c in clips]
    kept = [(c, t) for c, t in zip(clips, truths) if t in tags]
    if not kept:
        return {"skipped": "no clips of the model's tags"}
    columns = [ctx.label_index(t) for t in tags]
    peak, mean, smoothed_peak = [], [], []
    window = ctx.tag_window_hops
    for clip, _ in ctx.progress(kept, "tags"):
        scores = ctx.scorer.clip(clip).scores[:, columns]
        peak.append(scores.max(axis=0))
        mean.append(scores.mean(axis=0))
        smoothed_peak.append(moving_mean(scores, window).max(axis=0))
    truth = np.array([tags.index(t) for _, t in kept])
    out = {"n_clips": len(kept), "skipped_labels": sorted({t for t in truths if t and t not in tags})}
    per_class = {}
    for name, clip_scores in (("max", np.array(peak)), ("mean", np.array(mean))):
        aps = {tag: average_precision(truth == i, clip_scores[:, i]) for i, tag in enumerate(tags) if (truth == i).any()}
        top1 = clip_scores.argmax(axis=1) == truth
        top1_of = {tag: float(top1[truth == tags.index(tag)].mean()) for tag in aps}
        # a few recordings of one class can fill most of the clips; the balanced mean weighs labels equally
        out[f"clip_score_{name}"] = {"mAP": round(float(np.mean(list(aps.values()))), 4),
                                     "top1_accuracy": round(float(top1.mean()), 4),
                                     "top1_ci95": ci95(top1),
                                     "top1_balanced": round(float(np.mean(list(top1_of.values()))), 4),
                                     "labels_in_map": len(aps)}
        for tag, ap in aps.items():
            row = per_class.setdefault(tag, {"clips": int((truth == tags.index(tag)).sum())})
            row[f"ap_{name}"] = round(ap, 4)
            row[f"top1_{name}"] = round(top1_of[tag], 4)
    # what each tag's clips were heard as (top-1 of the peak scores), most common first: the confusions
    heard = np.array(peak).argmax(axis=1)
    for tag, row in per_class.items():
        row["heard_as"] = dict(Counter(tags[i] for i in heard[truth == tags.index(tag)]).most_common())
    out["per_class"] = per_class
    # the headline mixes datasets that fare very differently (a few UrbanSound8K street recordings
    # against ESC-50's many): top-1 of the peak scores per dataset folder says which one moves it
    sources = np.array([tag_source(ctx.groups.get(clip.path, "")) for clip, _ in kept])
    right = heard == truth
    out["top1_by_source"] = {source: {"clips": int((sources == source).sum()),
                                      "top1_accuracy": round(float(right[sources == source].mean()), 4),
                                      "top1_ci95": ci95(right[sources == source])}
                             for source in sorted(set(sources))}
    points = tag_operating_points([t for _, t in kept], np.array(smoothed_peak), tags)
    out["thresholds"] = {"rule": f"best clip-level F1 of the peak {window}-hop mean score, searched from "
                                 f"{TAG_THRESHOLDS[0]} to {TAG_THRESHOLDS[-1]}; tags with fewer than "
                                 f"{points['min_positives']} clips take the pooled threshold", **points}
    ctx.tag_thresholds = {tag: p["threshold"] for tag, p in points["per_tag"].items()}
    return out


def moving_mean(scores: np.ndarray, window: int) -> np.ndarray:
    """[n_hops, k] -> mean over the last `window` hops (fewer at the start), as TagSmoother smooths."""
    csum = np.cumsum(np.vstack([np.zeros((1, scores.shape[1])), scores]), axis=0)
    ends = np.arange(1, len(scores) + 1)
    starts = np.maximum(0, ends - window)
    return (csum[ends] - csum[starts]) / (ends - starts)[:, None]


def active_region(audio: np.ndarray) -> tuple[int, int]:
    """First and last sample of the frames within ACTIVE_DB of the loudest frame."""
    db = frame_db(audio)
    active = np.flatnonzero(db >= db.max() + ACTIVE_DB)
    return int(active[0] * FRAME_SAMPLES), int(min(len(audio), (active[-1] + 1) * FRAME_SAMPLES))


def at_rms(x: np.ndarray, rms: float, part: slice = slice(None)) -> np.ndarray:
    """x scaled so that x[part] has RMS rms (float64)."""
    x = x.astype(np.float64)
    return x * (rms / max(np.sqrt(np.mean(x[part] ** 2)), 1e-9))


def noise_background(ctx: Context) -> np.ndarray:
    """The split's noise/ recordings end to end (empty if there are none)."""
    noise = [ctx.scorer.audio(c) for c in ctx.clips if in_group(c, ctx.groups, "noise")]
    return np.concatenate(noise) if noise else np.zeros(0, np.float32)


def build_mixture(events: list[tuple[str, np.ndarray]], background: np.ndarray, sample_rate_hz: int,
                  seed: int = 0, gap_s=(2.0, 5.0)) -> tuple[np.ndarray, list[Event]]:
    """Background at BACKGROUND_RMS with each sound's active part at EVENT_RMS, a random gap before each."""
    rng = np.random.default_rng(seed)
    pieces, truth, position = [], [], 0
    for label, audio in events:
        start, end = active_region(audio)
        sound = at_rms(audio[start:end], EVENT_RMS)
        gap = round(rng.uniform(*gap_s) * sample_rate_hz)
        pieces += [np.zeros(gap), sound]
        onset = position + gap
        truth.append(Event(label, onset / sample_rate_hz, (onset + len(sound)) / sample_rate_hz))
        position = onset + len(sound)
    pieces.append(np.zeros(round(gap_s[1] * sample_rate_hz)))
    foreground = np.concatenate(pieces)
    if len(background) == 0:
        background = rng.standard_normal(len(foreground))
    bed = at_rms(np.resize(background, len(foreground)), BACKGROUND_RMS)
    return np.clip(foreground + bed, -1, 1).astype(np.float32), truth


def smoother_config(hop_samples: int, sample_rate_hz: int, on_threshold: float | None = None) -> TagSmootherConfig:
    """The service's tag smoother at this hop over TAG_WINDOW_S (turned into hops as the service does), at
    its default thresholds or at on_threshold with off at OFF_FRACTION of it."""
    thresholds = {} if on_threshold is None else {"on_threshold": on_threshold,
                                                  "off_threshold": round(OFF_FRACTION * on_threshold, 3)}
    return TagDefaults(window_s=TAG_WINDOW_S, **thresholds).smoother(hop_samples, sample_rate_hz)


def tag_segments(scored: Scored, tags: list[str], label_indices: list[int], sample_rate_hz: int,
                 hop_samples: int, thresholds: dict[str, float] | None = None) -> list[Event]:
    """The service's TagSmoother per tag (default settings, or the given on-thresholds), over TAG_WINDOW_S:
    each ended event is a segment."""
    segments = []
    for tag, column in zip(tags, label_indices):
        cfg = smoother_config(hop_samples, sample_rate_hz, (thresholds or {}).get(tag))
        segments += smoothed_segments(tag, scored.scores[:, column], scored.end_samples, cfg, sample_rate_hz, hop_samples)
    return segments


def smoothed_segments(tag: str, scores: np.ndarray, end_samples: np.ndarray, cfg: TagSmootherConfig,
                      sample_rate_hz: int, hop_samples: int) -> list[Event]:
    """The service's TagSmoother over one tag's scores: each ended event is a segment."""
    smoother = TagSmoother(tag, cfg, sample_rate_hz, hop_samples)
    decisions = []
    for score, end in zip(scores, end_samples):
        decisions += smoother.update(float(score), int(end))
    decisions += smoother.flush()
    return [Event(tag, d.start_sample / sample_rate_hz, d.end_sample / sample_rate_hz)
            for d in decisions if d.kind == "end"]


def eval_mixtures(ctx: Context) -> dict:
    tags = list(ctx.model.info.names_of_kind(KIND_TAG))
    sources = [c for c in ctx.clips if in_group(c, ctx.groups, "tags") and tag_truth(c, ctx.groups) in tags]
    if not sources:
        return {"skipped": "no tag clips of the model's tags"}
    rng = np.random.default_rng(ctx.args.seed)
    chosen = [sources[i] for i in sorted(rng.choice(len(sources), min(ctx.args.mixture_events, len(sources)), replace=False))]
    rng.shuffle(chosen)
    sr = ctx.scorer.sample_rate_hz
    background = noise_background(ctx)
    audio, truth = build_mixture([(tag_truth(c, ctx.groups), ctx.scorer.audio(c)) for c in chosen], background, sr,
                                 seed=ctx.args.seed)
    block = 10 * sr
    blocks = (audio[i : i + block] for i in range(0, len(audio), block))
    scored = ctx.scorer.stream(ctx.progress(blocks, "mixtures", total=-(-len(audio) // block), unit="10s"))
    columns = [ctx.label_index(t) for t in tags]
    out = {
        "events": len(truth),
        "duration_s": round(len(audio) / sr, 2),
        "background": "noise/ clips" if len(background) else "white noise",
        "snr_db": round(20 * np.log10(EVENT_RMS / BACKGROUND_RMS), 1),
        "smoother": dataclasses.asdict(smoother_config(ctx.scorer.hop_samples, sr)),
        "thresholds": "per tag from the tags task (off at %g x on)" % OFF_FRACTION if ctx.tag_thresholds
                      else "the smoother's defaults (run the tags task first for per-tag thresholds)",
        "collar_s": COLLAR_S,
        "truth": [dataclasses.asdict(e) for e in truth],
    }
    # With per-tag thresholds (as config.yaml sets them) and, for comparison, the smoother's defaults.
    for key, thresholds in (("", ctx.tag_thresholds), ("at_default_thresholds_", {})):
        if key and not ctx.tag_thresholds:
            continue
        predicted = tag_segments(scored, tags, columns, sr, ctx.scorer.hop_samples, thresholds)
        out |= {
            f"{key}predicted_segments": len(predicted),
            f"{key}event_f1_onset_offset": f1_score(*match_events(truth, predicted, COLLAR_S, check_offset=True)),
            f"{key}event_f1_onset": f1_score(*match_events(truth, predicted, COLLAR_S, check_offset=False)),
            f"{key}event_f1_detected": f1_score(*match_overlaps(truth, predicted, COLLAR_S)),
            f"{key}boundaries": boundary_errors(truth, predicted),
            f"{key}predicted": [dataclasses.asdict(e) for e in predicted],
        }
    return out


def beep_groups(beeps: list[tuple[float, float]], offset_s: float) -> list[tuple[float, float]]:
    """(start_s, end_s) of each group of beeps closer than ALARM_GROUP_GAP_S, shifted by offset_s."""
    return [(a + offset_s, b + offset_s) for a, b, _ in _grouped(beeps)]


def whole_groups(beeps: list[tuple[float, float]], kind: str, seconds: float) -> list[bool]:
    """Per beep group: does the clip hold all of it (every beep of the pattern, the last not cut by the
    clip's end at seconds)? A clip starts anywhere in the cycle, so its first group may be a part."""
    from export.data.synth_alarms import TEMPORAL

    count = TEMPORAL[kind][0]
    return [n == count and b < seconds for _, b, n in _grouped(beeps)]


def _grouped(beeps: list[tuple[float, float]]) -> list[tuple[float, float, int]]:
    """(start_s, end_s, beeps) of each group of beeps closer than ALARM_GROUP_GAP_S."""
    groups = []
    for start, end in beeps:
        if groups and start - groups[-1][1] < ALARM_GROUP_GAP_S:
            groups[-1] = (groups[-1][0], end, groups[-1][2] + 1)
        else:
            groups.append((start, end, 1))
    return groups


def alarm_scenes(ctx: Context, quiet: bool = False,
                 plan: list[tuple[str, tuple[float, float]]] | None = None,
                 seed: int = ALARM_SEED) -> list[tuple[np.ndarray, list[tuple[float, float]], list[bool]]]:
    """Held-out synthetic alarms over noise/ background, 20 dB above it (quiet: over digital silence):
    (audio, beep groups, which of them are whole: whole_groups). plan: (kind, piezo fundamental range)
    per alarm; default temporal-three and temporal-four in turn, ALARM_CLIPS_PER_KIND each, at the
    generator's default pitch."""
    from export.data.synth_alarms import PIEZO_F0_HZ, make_alarm_with_beeps

    sr = ctx.scorer.sample_rate_hz
    rng = np.random.default_rng(seed)
    background = noise_background(ctx)
    if not len(background):
        background = rng.standard_normal(sr).astype(np.float32)
    lead = round(ALARM_LEAD_S * sr)
    scenes = []
    for kind, f0_range_hz in plan or [(kind, PIEZO_F0_HZ) for kind in ("t3", "t4") * ALARM_CLIPS_PER_KIND]:
        alarm, beeps = make_alarm_with_beeps(kind, ALARM_SECONDS, sr, rng, f0_range_hz)
        alarm = at_rms(alarm, EVENT_RMS, slice(*active_region(alarm)))
        n = lead + len(alarm) + lead
        offset = int(rng.integers(max(1, len(background) - n)))
        bed = at_rms(np.resize(background[offset:offset + n], n), 0.0 if quiet else BACKGROUND_RMS)
        bed[lead:lead + len(alarm)] += alarm
        scenes.append((bed.astype(np.float32), beep_groups(beeps, ALARM_LEAD_S), whole_groups(beeps, kind, ALARM_SECONDS)))
    return scenes


def alarm_variant_scenes(ctx: Context) -> dict[str, list[tuple[np.ndarray, list[tuple[float, float]], list[bool]]]]:
    """ALARM_VARIANT_CLIPS held-out alarms of each ALARM_VARIANTS entry, over background as alarm_scenes."""
    scenes = alarm_scenes(ctx, plan=[v for v in ALARM_VARIANTS.values() for _ in range(ALARM_VARIANT_CLIPS)],
                          seed=ALARM_VARIANT_SEED)
    return {name: scenes[i * ALARM_VARIANT_CLIPS:(i + 1) * ALARM_VARIANT_CLIPS] for i, name in enumerate(ALARM_VARIANTS)}


def eval_alarms(ctx: Context) -> dict:
    """smoke_alarm on held-out synthetic alarms (detected beep groups) and on the negative stream
    (false starts per hour), per on-threshold, with a smoothing window longer than a beep gap."""
    column = ctx.label_index(ALARM_TAG)
    if column is None:
        return {"skipped": f"the model has no {ALARM_TAG} tag"}
    sr, hop = ctx.scorer.sample_rate_hz, ctx.scorer.hop_samples
    scenes, quiet_scenes = ([(ctx.scorer.stream([audio]), groups, whole) for audio, groups, whole in
                             ctx.progress(alarm_scenes(ctx, quiet), "alarms")] for quiet in (False, True))
    variants = {name: [(ctx.scorer.stream([audio]), groups, whole) for audio, groups, whole in found]
                for name, found in ctx.progress(list(alarm_variant_scenes(ctx).items()), "alarm variants")}
    stream = negative_stream(ctx)
    negative, hours, n_negative = stream.scored, stream.hours, len(stream.names)
    n_groups = sum(len(g) for _, g, _ in scenes)
    n_whole = sum(sum(w) for _, _, w in scenes)

    def detected(scenes, cfg) -> tuple[int, int, int]:
        """(beep groups the tag was on for, of them whole groups, segments starting inside the alarms)"""
        hits = whole_hits = segments_in_alarms = 0
        for scored, groups, whole in scenes:
            segments = smoothed_segments(ALARM_TAG, scored.scores[:, column], scored.end_samples, cfg, sr, hop)
            found = [any(s.onset_s <= b + ALARM_LATE_S and s.offset_s >= a for s in segments) for a, b in groups]
            hits += sum(found)
            whole_hits += sum(f and w for f, w in zip(found, whole))
            segments_in_alarms += sum(s.onset_s >= ALARM_LEAD_S for s in segments)
        return hits, whole_hits, segments_in_alarms

    rows = []
    for threshold in ALARM_THRESHOLDS:
        cfg = TagSmootherConfig(on_threshold=float(threshold), off_threshold=round(ALARM_OFF_FRACTION * threshold, 3),
                                window_hops=ALARM_WINDOW_HOPS)
        hits, whole_hits, segments_in_alarms = detected(scenes, cfg)
        quiet_hits, _, _ = detected(quiet_scenes, cfg)
        variant_hits = {name: detected(v, cfg) for name, v in variants.items()}
        variant_pct = {name: round(100.0 * variant_hits[name][0] / max(1, sum(len(g) for _, g, _ in v)), 1)
                       for name, v in variants.items()}
        variant_whole_pct = {name: round(100.0 * variant_hits[name][1] / max(1, sum(sum(w) for _, _, w in v)), 1)
                             for name, v in variants.items()}
        false_starts = len(smoothed_segments(ALARM_TAG, negative.scores[:, column], negative.end_samples, cfg, sr, hop))
        rows.append({"threshold": float(threshold), "off_threshold": cfg.off_threshold,
                     "detected_pct": round(100.0 * hits / max(1, n_groups), 1),
                     "whole_groups_detected_pct": round(100.0 * whole_hits / max(1, n_whole), 1),
                     "detected_in_silence_pct": round(100.0 * quiet_hits / max(1, n_groups), 1),
                     "segments_per_group": round(segments_in_alarms / max(1, n_groups), 2),
                     "variants_detected_pct": variant_pct, "variants_whole_groups_detected_pct": variant_whole_pct,
                     "false_starts": false_starts, "false_starts_per_h": round(false_starts / hours, 2) if hours else None})
    within = [r for r in rows if r["false_starts_per_h"] is not None and r["false_starts_per_h"] <= ALARM_FA_PER_H]
    best = max(within, key=lambda r: (r["detected_pct"], -r["segments_per_group"], -r["threshold"]), default=None)
    return {"alarms": len(scenes), "beep_groups": n_groups, "whole_groups": n_whole, "kinds": "temporal-three and temporal-four, half each",
            "generator": f"export.data.synth_alarms, seed {ALARM_SEED} (training uses seed 0)",
            "variants": {name: {"kind": kind, "f0_range_hz": list(f0) if kind != "t3low" else None,
                                "alarms": ALARM_VARIANT_CLIPS, "seed": ALARM_VARIANT_SEED}
                         for name, (kind, f0) in ALARM_VARIANTS.items()},
            "snr_db": round(20 * np.log10(EVENT_RMS / BACKGROUND_RMS), 1), "negative_hours": round(hours, 4),
            "negative_clips": n_negative, "window_hops": ALARM_WINDOW_HOPS, "late_s": ALARM_LATE_S,
            f"best_within_{ALARM_FA_PER_H:g}_false_starts_per_h": best, "table": rows}


TASK_FUNCTIONS = {"kws": eval_kws, "wakeword": eval_wakeword, "tags": eval_tags, "mixtures": eval_mixtures,
                  "alarms": eval_alarms}


# ---------------------------------------------------------------------------------------------
# Plots (matplotlib, Agg)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(matrix, labels: list[str], title: str, path: Path) -> Path:
    plt = _pyplot()
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(7, 6))
    fraction = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)  # per true class
    ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(matrix):
        if n:
            ax.text(j, i, str(n), ha="center", va="center", fontsize=7, color="white" if fraction[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_det(curves: dict[str, list[dict]], title: str, path: Path) -> Path:
    """FRR % against false accepts per hour, one line per keyword (or model)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, rows in curves.items():
        rows = [r for r in rows if r["fa_per_h"] is not None and r["frr_pct"] is not None]
        ax.plot([max(r["fa_per_h"], 1e-2) for r in rows], [r["frr_pct"] for r in rows], marker=".", label=name)
    ax.axvline(TARGET_FA_PER_H, color="grey", linestyle=":")
    ax.set_xscale("log")
    ax.set_xlabel("false accepts per hour (0 drawn at 0.01)")
    ax.set_ylabel("false rejects (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_tag_ap(per_class: dict, title: str, path: Path) -> Path:
    plt = _pyplot()
    names = sorted(per_class, key=lambda n: per_class[n].get("ap_max", 0))
    fig, ax = plt.subplots(figsize=(7, max(3, 0.16 * len(names))))
    ax.barh(names, [per_class[n].get("ap_max", 0) for n in names])
    ax.set_xlim(0, 1)
    ax.set_xlabel("average precision (clip score = max over hops)")
    ax.tick_params(axis="y", labelsize=6)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(result: dict, out: Path, stem: str) -> list[str]:
    written = []
    kws = result["tasks"].get("kws", {})
    if "confusion_12" in kws:
        written.append(plot_confusion(kws["confusion_12"], kws["labels_12"], f"{stem}: 12-class", out / f"{stem}_kws_confusion_12.png"))
        written.append(plot_confusion(kws["confusion_11"], kws["labels_11"], f"{stem}: 11-class", out / f"{stem}_kws_confusion_11.png"))
    wake = result["tasks"].get("wakeword", {})
    if wake.get("keywords"):
        curves = {k: v["table"] for k, v in wake["keywords"].items()}
        written.append(plot_det(curves, f"{stem}: DET, {wake['negative_hours']:.2f} h negatives", out / f"{stem}_det.png"))
    tags = result["tasks"].get("tags", {})
    if tags.get("per_class"):
        written.append(plot_tag_ap(tags["per_class"], f"{stem}: tag AP", out / f"{stem}_tags_ap.png"))
    return [p.name for p in written]


# ---------------------------------------------------------------------------------------------
# The command


def evaluate_model(path: Path, clips: list[Clip], groups: dict[Path, str], args: argparse.Namespace) -> dict:
    model = load_model(path, threads=1)
    hop_samples = round(args.hop_ms * model.info.sample_rate_hz / 1000)
    if hop_samples not in model.info.hop_samples:
        accepted = [round(model.info.hop_ms(h), 1) for h in model.info.hop_samples]
        raise SystemExit(f"{path}: hop {args.hop_ms} ms ({hop_samples} samples) is not one it accepts: {accepted} ms")
    model = model.with_hop(hop_samples)  # as the service loads it
    ctx = Context(Scorer(model, hop_samples, args.split, args.pad, args.seed, args.gain_db, args.hum_db, args.dc_offset),
                  clips, groups, args)
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
        "data": str(args.data),
        "split": args.split,
        "gain_db": args.gain_db,
        "snr_db": args.snr_db,
        "hum_db": args.hum_db,
        "dc_offset": args.dc_offset,
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
    p.add_argument("--data", type=Path, required=True, help="folder with manifest.csv (like ../shared/data)")
    p.add_argument("--split", choices=("val", "train", "all"), default="val",
                   help="validation clips only (default), training clips only (to measure the gap), or all clips")
    p.add_argument("--hop-ms", type=float, required=True, help="hop (latency quantum) in ms; same for every model")
    p.add_argument("--out", type=Path, required=True, help="folder for JSON and PNG results")
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    p.add_argument("--threshold", type=float, default=0.5, help="keyword score threshold (0..1) for accuracy")
    p.add_argument("--pad", choices=("zeros", "noise"), default="zeros",
                   help="what surrounds each keyword clip: digital silence or -45 dBFS white noise")
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
    p.add_argument("--n-of-m", type=lambda s: tuple(int(x) for x in s.split("/")), default=None,
                   help="trigger N/M in hops, e.g. 2/3 (default: the service's KeywordTriggerConfig default)")
    p.add_argument("--refractory-s", type=float, default=None, help="trigger refractory in seconds (default: the service's)")
    p.add_argument("--speech-gate", type=float, default=KeywordDefaults.speech_gate,
                   help="keyword hops count only where the model's speech score reached this within --speech-gate-s "
                        "(default: the service's, %(default)s; 0 = off)")
    p.add_argument("--speech-gate-s", type=float, default=KeywordDefaults.speech_gate_s,
                   help="the speech gate's look-back in seconds (default: the service's, %(default)s)")
    p.add_argument("--mixture-events", type=int, default=60, help="sounds inserted into the long mixture")
    p.add_argument("--seed", type=int, default=0, help="seed of the mixture and noise padding")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        p.error(f"unknown task(s) {unknown}; choose from {list(TASKS)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    root = args.data.resolve()
    clips, groups = select_clips(root, args.split)
    if not clips:
        raise SystemExit(f"no clips in {root / 'manifest.csv'} for split {args.split!r}")
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
    comparison = {"hop_ms": args.hop_ms, "split": args.split, "data": str(root), "comparison": rows}
    (args.out / "comparison.json").write_text(json.dumps(comparison, indent=1) + "\n")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
