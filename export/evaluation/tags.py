"""The tag tasks: per-clip average precision and top-1, and tag start/end on a long mixture of sounds."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from export.evaluation.clips import SPEECH_TAG, in_group, tag_clips, tag_source, tag_truth
from export.evaluation.context import Context, noise_background
from export.evaluation.decisions import moving_mean, smoother_config, tag_segments
from export.evaluation.streaming import BACKGROUND_RMS, EVENT_RMS, active_region, at_rms
from export.metrics import (COLLAR_S, OFF_FRACTION, TAG_THRESHOLDS, Event, average_precision, boundary_errors, ci95,
                            f1_score, match_events, match_overlaps, tag_operating_points)
from streamd.config import KeywordDefaults
from streamd.contract import KIND_TAG


# Padding (--pad) streamed before and after each tag clip: the service hears a sound arrive into a stream
# that already holds other audio. Streamed alone from a zero state, as before session 45, the default model
# named the validation sounds (speech aside) 22.6 % of the time; after 0.5 s of silence, 15.4 %.
TAG_PAD_S = 0.5
SPEECH_AT = KeywordDefaults().speech_gate  # where the service's speech gate opens by default (0.5)


def eval_tags(ctx: Context) -> dict:
    tags = list(ctx.model.info.names_of_kind(KIND_TAG))
    labelled = tag_clips(ctx.clips, ctx.groups)
    kept = [(c, t) for c, t in labelled if t in tags]
    if not kept:
        return {"skipped": "no clips of the model's tags"}
    columns = [ctx.label_index(t) for t in tags]
    leads = ctx.scorer.leads
    plays = ctx.scorer.plays(kept)  # each clip at each phase of the hop grid
    by_phase = (len(leads), len(kept))  # intervals count clips, not plays: a clip's phases are not independent
    peak, mean, smoothed_peak = [], [], []
    window, pad_s, hop = ctx.tag_window_hops, ctx.args.tag_pad_s, ctx.scorer.hop_samples
    for lead, (clip, _) in ctx.progress(plays, "tags", unit="play"):
        scored = ctx.scorer.clip(clip, pad_s, lead_samples=lead)
        scores = scored.scores[:, columns]
        start, end = scored.clip_span  # the hops that hold some of the clip, for its mean score
        inside = (scored.end_samples > start) & (scored.end_samples - hop < end)
        peak.append(scores.max(axis=0))
        mean.append(scores[inside].mean(axis=0))
        smoothed_peak.append(moving_mean(scores, window).max(axis=0))
    peak, mean = np.array(peak), np.array(mean)  # [plays, tags]
    truth = np.array([tags.index(t) for _, (_, t) in plays])
    out = {"n_clips": len(kept), "phases": len(leads), "leads_ms": ctx.scorer.leads_ms, "pad_s": pad_s,
           "stream": f"{pad_s:g} s of {ctx.scorer.pad} before and after each clip, max score over the stream (mean: "
                     f"over the hops that hold the clip); each clip played at each phase of the hop grid, "
                     f"{ctx.scorer.leads_ms} ms more before it",
           "skipped_labels": sorted({t for _, t in labelled if t and t not in tags})}
    per_class = {}
    for name, clip_scores in (("max", peak), ("mean", mean)):
        aps = {tag: average_precision(truth == i, clip_scores[:, i]) for i, tag in enumerate(tags) if (truth == i).any()}
        top1 = clip_scores.argmax(axis=1) == truth
        top1_of = {tag: float(top1[truth == tags.index(tag)].mean()) for tag in aps}
        # a few recordings of one class can fill most of the clips; the balanced mean weighs labels equally
        out[f"clip_score_{name}"] = {"mAP": round(float(np.mean(list(aps.values()))), 4),
                                     "top1_accuracy": round(float(top1.mean()), 4),
                                     "top1_ci95": ci95(top1.reshape(by_phase)),
                                     "top1_balanced": round(float(np.mean(list(top1_of.values()))), 4),
                                     "labels_in_map": len(aps)}
        for tag, ap in aps.items():
            row = per_class.setdefault(tag, {"clips": int((truth == tags.index(tag)).sum()) // len(leads)})
            row[f"ap_{name}"] = round(ap, 4)
            row[f"top1_{name}"] = round(top1_of[tag], 4)
    # what each tag's plays were heard as (top-1 of the peak scores), most common first: the confusions
    heard = peak.argmax(axis=1)
    for tag, row in per_class.items():
        row["heard_as"] = dict(Counter(tags[i] for i in heard[truth == tags.index(tag)]).most_common())
    out["per_class"] = per_class
    # the headline mixes datasets that fare very differently (a few UrbanSound8K street recordings
    # against ESC-50's many): top-1 of the peak scores per dataset folder says which one moves it
    sources = np.array([tag_source(ctx.groups.get(clip.path, "")) for clip, _ in kept])
    right = (heard == truth).reshape(by_phase)
    out["top1_by_source"] = {source: {"clips": int((sources == source).sum()),
                                      "top1_accuracy": round(float(right[:, sources == source].mean()), 4),
                                      "top1_ci95": ci95(right[:, sources == source])}
                             for source in sorted(set(sources))}
    if SPEECH_TAG in tags:
        out["speech_in_sounds"] = speech_in_sounds(peak, truth, tags.index(SPEECH_TAG))
    points = tag_operating_points([t for _, (_, t) in plays], np.array(smoothed_peak), tags, phases=len(leads))
    out["thresholds"] = {"rule": f"best F1 over the plays of the peak {window}-hop mean score, searched from "
                                 f"{TAG_THRESHOLDS[0]} to {TAG_THRESHOLDS[-1]}; tags with fewer than "
                                 f"{points['min_positives']} clips take the pooled threshold", **points}
    ctx.tag_thresholds = {tag: p["threshold"] for tag, p in points["per_tag"].items()}
    return out


def speech_in_sounds(peak: np.ndarray, truth: np.ndarray, speech: int) -> dict:
    """How often the speech score takes a sound that is no speech for a voice (peak: [plays, tags] peak scores,
    truth: each play's tag index, speech: the speech column): the share of those plays whose speech peak over the
    stream reaches SPEECH_AT (where the service's speech gate opens for the keywords), and the median peak. A model
    that learnt "anything arriving after quiet is a word" reaches it at most onsets (docs/data.md "Speech at every
    onset"). And what it costs the top-1: the share of those plays that speech wins, and their top-1 with speech
    left out of the ranking (what a model whose speech score never outranked the sound could reach at most)."""
    sound = truth != speech
    if not sound.any():
        return {"plays": 0, "threshold": SPEECH_AT, "share_at_threshold": None, "median_peak": None}
    peaks, others = peak[sound, speech], peak[sound].copy()
    others[:, speech] = -np.inf
    return {"plays": int(sound.sum()), "threshold": SPEECH_AT,
            "share_at_threshold": round(float(np.mean(peaks >= SPEECH_AT)), 4),
            "median_peak": round(float(np.median(peaks)), 4),
            "top1_speech_share": round(float(np.mean(peak[sound].argmax(axis=1) == speech)), 4),
            "top1": round(float(np.mean(peak[sound].argmax(axis=1) == truth[sound])), 4),
            "top1_without_speech": round(float(np.mean(others.argmax(axis=1) == truth[sound])), 4)}


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
