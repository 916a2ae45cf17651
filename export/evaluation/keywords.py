"""The keyword tasks: Speech Commands accuracy (11 and 12 classes) and the wake-word threshold tables."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from export.evaluation.clips import SPEECH_TAG, in_group, keyword_positives
from export.evaluation.context import Context, NegativeStream, negative_stream, speech_gate
from export.evaluation.decisions import det_table, detections, trigger_config
from export.evaluation.streaming import Scored, frame_db
from export.labels import COMMANDS, SILENCE, UNKNOWN
from export.metrics import (TARGET_FA_PER_H, accuracy, best_threshold, ci95, confusion_matrix, kws_predict,
                            operating_point)
from streamd.contract import KIND_KEYWORD
from streamd.triggers import KeywordTriggerConfig

NO_KEYWORD = "no_keyword"
PAD_S = 0.5  # silence streamed before and after each keyword clip
SILENCE_RANGE_DB = 6.0  # energy rule: a clip whose loud and quiet frames differ by less is silence


def is_silence_by_energy(audio: np.ndarray) -> bool:
    """Stationary background has a small range between its loud (95th pct) and quiet (10th pct)
    frames; speech has tens of dB. On kws/gsc_v2, 95% of _silence_ clips span < 6 dB, 99% of
    spoken clips more."""
    db = frame_db(audio)
    return float(np.percentile(db, 95) - np.percentile(db, 10)) < SILENCE_RANGE_DB


def eval_kws(ctx: Context) -> dict:
    clips = [c for c in ctx.clips if in_group(c, ctx.groups, "kws/gsc_v2")]
    present = [k for k in COMMANDS if ctx.label_index(k) is not None]
    if not clips or not present:
        return {"skipped": "no kws/gsc_v2 clips" if not clips else "the model has none of the ten commands"}
    labels11 = list(COMMANDS) + [NO_KEYWORD]
    labels12 = list(COMMANDS) + [SILENCE, UNKNOWN]
    speech = ctx.speech_index
    leads = ctx.scorer.leads
    plays = ctx.scorer.plays(clips)  # each clip at each phase of the hop grid
    max_scores, speechlike, truth12 = [], [], []
    for lead, clip in ctx.progress(plays, "kws", unit="play"):
        scored = ctx.gated(ctx.scorer.clip(clip, PAD_S, noisy=True, lead_samples=lead))
        peak = scored.counted().max(axis=0)
        max_scores.append([peak[i] if (i := ctx.label_index(k)) is not None else 0.0 for k in COMMANDS])
        speechlike.append(peak[speech] >= 0.5 if speech is not None else not is_silence_by_energy(ctx.scorer.audio(clip)))
        truth12.append(labels12.index(clip.label) if clip.label in labels12 else labels12.index(UNKNOWN))
    max_scores, truth12 = np.array(max_scores, np.float32), np.array(truth12)
    by_phase = (len(leads), len(clips))  # the interval counts clips, not plays: a clip's phases are not independent
    truth11 = np.minimum(truth12, len(COMMANDS))
    pred11 = kws_predict(max_scores, ctx.args.threshold)
    pred12 = np.where(pred11 < len(COMMANDS), pred11, np.where(speechlike, labels12.index(UNKNOWN), labels12.index(SILENCE)))
    best_t, best_acc = best_threshold(max_scores, truth11)
    conf12 = confusion_matrix(truth12, pred12, len(labels12))
    return {
        "n_clips": len(clips),
        "phases": len(leads),
        "threshold": ctx.args.threshold,
        "accuracy_11": round(accuracy(truth11, pred11), 4),
        "accuracy_11_ci95": ci95((truth11 == pred11).reshape(by_phase)),
        "accuracy_12": round(accuracy(truth12, pred12), 4),
        "accuracy_12_ci95": ci95((truth12 == pred12).reshape(by_phase)),
        "best_threshold_11": {"threshold": best_t, "accuracy_11": round(best_acc, 4)},
        "silence_rule": (f"'{SPEECH_TAG}' tag max >= 0.5 means unknown" if speech is not None else
                         f"energy: 95th-10th percentile frame level < {SILENCE_RANGE_DB} dB means silence"),
        "stream": f"{PAD_S} s of {ctx.scorer.pad} before and after each clip, max score over the stream; each clip "
                  f"played at each phase of the hop grid, {ctx.scorer.leads_ms} ms more before it",
        **speech_gate(ctx.args),
        "missing_keywords": [k for k in COMMANDS if k not in present],
        "per_class_accuracy_12": {l: round(float(conf12[i, i] / conf12[i].sum()), 4) if conf12[i].sum() else None
                                  for i, l in enumerate(labels12)},
        "errors": [{"clip": ctx.groups[c.path] + "/" + c.path.name, "truth": labels11[t], "predicted": labels11[p],
                    "top_score": round(float(s.max()), 3), "lead_ms": ctx.scorer.ms(lead)}
                   for (lead, c), t, p, s in zip(plays, truth11, pred11, max_scores) if t != p],
        "labels_11": labels11,
        "confusion_11": confusion_matrix(truth11, pred11, len(labels11)).tolist(),
        "labels_12": labels12,
        "confusion_12": conf12.tolist(),
    }


def false_accepts_where(negative: NegativeStream, scores: Scored, label_index: int, name: str,
                        cfg: KeywordTriggerConfig, sample_rate_hz: int, hop_samples: int) -> dict:
    """Where the trigger fires in the negative stream: counts by dataset folder ('speech', 'tags/esc50',
    'kws/precise', ...), and every place."""
    places = negative.where(detections(scores.scores[:, label_index], scores.end_samples, name, cfg, sample_rate_hz,
                                       hop_samples, scores.opened_at(label_index)), sample_rate_hz)
    by_source = Counter("/".join(p["clip"].split("/")[:-1][:2]) for p in places)
    return {"by_source": dict(by_source.most_common()), "places": places}


def eval_wakeword(ctx: Context) -> dict:
    keywords = ctx.model.info.names_of_kind(KIND_KEYWORD)
    if not keywords:
        return {"skipped": "the model has no keywords"}
    stream = negative_stream(ctx)
    negative, hours = ctx.gated(stream.scored), stream.hours
    leads = ctx.scorer.leads
    out = {
        "negative_clips": len(stream.names),
        "negative_hours": round(hours, 4),  # of all passes
        "phases": len(leads),  # the negatives and each positive played at each phase of the hop grid
        "leads_ms": ctx.scorer.leads_ms,
        "trigger": dataclasses.asdict(trigger_config(0.5, ctx.args.n_of_m, ctx.args.refractory_s))
        | {"threshold": "swept"} | speech_gate(ctx.args),
        "keywords": {},
    }
    for keyword in ctx.progress(keywords, "wakeword thresholds", unit="keyword"):
        clips = keyword_positives(ctx.clips, ctx.groups, keyword)
        positives = [ctx.gated(ctx.scorer.clip(c, PAD_S, noisy=True, lead_samples=lead))
                     for lead, c in ctx.scorer.plays(clips)]
        rows = det_table(positives, negative, ctx.label_index(keyword), keyword, hours, ctx.scorer.sample_rate_hz,
                         ctx.scorer.hop_samples, n_of_m=ctx.args.n_of_m, refractory_s=ctx.args.refractory_s,
                         phases=len(leads))
        at_default = next((r for r in rows if r["threshold"] == ctx.args.threshold), None)
        if at_default is not None:  # what fired, so that a real "on" in unscreened speech can be told from a mistake
            at_default["false_accepts_where"] = false_accepts_where(
                stream, negative, ctx.label_index(keyword), keyword,
                trigger_config(ctx.args.threshold, ctx.args.n_of_m, ctx.args.refractory_s),
                ctx.scorer.sample_rate_hz, ctx.scorer.hop_samples)
        out["keywords"][keyword] = {
            "positives": len(clips),
            f"best_within_{TARGET_FA_PER_H}_fa_per_h": operating_point(rows),
            "at_threshold": at_default,
            "table": rows,
        }
    return out
