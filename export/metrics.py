"""Metrics of the evaluation: pure functions over arrays and event lists (no models, no audio)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KWS_THRESHOLDS = tuple(np.round(np.arange(0.01, 0.991, 0.01), 3))
# Tag on-thresholds searched: from 0.3, so that a tag whose few validation clips favour recall does not
# fire on everything in a household (no hour-long negatives for tags here to bound it otherwise).
TAG_THRESHOLDS = tuple(np.round(np.arange(0.3, 0.951, 0.025), 3))
TARGET_FA_PER_H = 0.5  # the wake-word goal's false-accept budget
COLLAR_S = 0.5
MIN_TAG_POSITIVES = 5  # fewer validation clips of a tag than this: its threshold is the pooled one
OFF_FRACTION = 0.6  # a tag's off threshold as a fraction of its on threshold (hysteresis)


def accuracy(truth, pred) -> float:
    truth, pred = np.asarray(truth), np.asarray(pred)
    return float(np.mean(truth == pred)) if len(truth) else 0.0


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % at z = 1.96) of the proportion successes / n; (0, 1) when n = 0.

    At the ends it stays honest: 0 of 11 gives 0 to 26 %, where the plain normal interval collapses to
    a point. It takes the n clips as independent; clips of one speaker or one recording are not, so the
    real uncertainty is wider still."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if successes <= 0 else max(0.0, float(centre - half))  # exact ends: no 1e-17 from rounding
    hi = 1.0 if successes >= n else min(1.0, float(centre + half))
    return lo, hi


def ci95(correct: np.ndarray) -> list[float]:
    """The 95 % interval of the fraction of clips right (wilson_interval), rounded for a JSON report. correct
    [n_clips], or [n_phases, n_clips] for clips played at several phases of the hop grid: each clip then
    counts once, with the share of its phases right (its plays are not independent)."""
    correct = np.atleast_2d(correct)
    return [round(v, 4) for v in wilson_interval(float(np.mean(correct, axis=0).sum()), correct.shape[1])]


def confusion_matrix(truth, pred, n_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    matrix = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(matrix, (np.asarray(truth, np.int64), np.asarray(pred, np.int64)), 1)
    return matrix


def kws_predict(max_scores: np.ndarray, threshold: float) -> np.ndarray:
    """max_scores [N, K] -> class index per clip: argmax keyword, or K (no keyword) below threshold."""
    best = max_scores.argmax(axis=1)
    return np.where(max_scores.max(axis=1) >= threshold, best, max_scores.shape[1])


def best_threshold(max_scores: np.ndarray, truth: np.ndarray, thresholds=KWS_THRESHOLDS) -> tuple[float, float]:
    """The threshold with the highest accuracy (the lowest such threshold on ties)."""
    accs = [accuracy(truth, kws_predict(max_scores, t)) for t in thresholds]
    i = int(np.argmax(accs))
    return float(thresholds[i]), float(accs[i])


def average_precision(positive, scores) -> float:
    """Area under the precision-recall step curve, ties grouped (as sklearn's average_precision_score)."""
    positive = np.asarray(positive, bool)
    scores = np.asarray(scores, np.float64)
    if not positive.any():
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], positive[order]
    last_of_tie = np.r_[np.diff(s) != 0, True]
    tp = np.cumsum(y)[last_of_tie]
    ranked = np.arange(1, len(s) + 1)[last_of_tie]
    precision, recall = tp / ranked, tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def operating_point(rows: list[dict], max_fa_per_h: float = TARGET_FA_PER_H) -> dict | None:
    """The lowest-FRR row within the false-accept budget (the lowest threshold on ties)."""
    ok = [r for r in rows if r["fa_per_h"] is not None and r["frr_pct"] is not None and r["fa_per_h"] <= max_fa_per_h]
    return min(ok, key=lambda r: (r["frr_pct"], r["threshold"])) if ok else None


@dataclass(frozen=True)
class Event:
    label: str
    onset_s: float
    offset_s: float


def match_events(truth: list[Event], predicted: list[Event], collar_s: float = COLLAR_S,
                 check_offset: bool = True) -> tuple[int, int, int]:
    """Greedy one-to-one matching per label: a prediction matches a true event of its label when its
    onset (and offset, if check_offset) is within collar_s. Returns (tp, fp, fn)."""
    used: set[int] = set()
    tp = 0
    for t in sorted(truth, key=lambda e: e.onset_s):
        best, best_cost = None, None
        for j, p in enumerate(predicted):
            if j in used or p.label != t.label:
                continue
            d_on, d_off = abs(p.onset_s - t.onset_s), abs(p.offset_s - t.offset_s)
            if d_on > collar_s or (check_offset and d_off > collar_s):
                continue
            cost = d_on + (d_off if check_offset else 0.0)
            if best_cost is None or cost < best_cost:
                best, best_cost = j, cost
        if best is not None:
            used.add(best)
            tp += 1
    return tp, len(predicted) - tp, len(truth) - tp


def match_overlaps(truth: list[Event], predicted: list[Event], tail_s: float = COLLAR_S) -> tuple[int, int, int]:
    """Detection matching for a streaming detector, whose onsets come late by its latency: a
    prediction matches a true event of its label when it starts inside the event (or within
    tail_s after its end); one-to-one, earliest prediction first. Returns (tp, fp, fn)."""
    used: set[int] = set()
    tp = 0
    for t in sorted(truth, key=lambda e: e.onset_s):
        hits = [j for j, p in enumerate(predicted) if j not in used and p.label == t.label
                and p.offset_s > t.onset_s and p.onset_s <= t.offset_s + tail_s]
        if hits:
            used.add(min(hits, key=lambda j: predicted[j].onset_s))
            tp += 1
    return tp, len(predicted) - tp, len(truth) - tp


def f1_score(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": round(f1, 4), "precision": round(precision, 4), "recall": round(recall, 4),
            "tp": tp, "fp": fp, "fn": fn}


def boundary_errors(truth: list[Event], predicted: list[Event]) -> dict:
    """For each true event, the same-label prediction overlapping it most: onset and offset error
    (predicted - true, seconds)."""
    onsets, offsets = [], []
    for t in truth:
        overlaps = [(min(p.offset_s, t.offset_s) - max(p.onset_s, t.onset_s), p) for p in predicted
                    if p.label == t.label]
        overlaps = [(o, p) for o, p in overlaps if o > 0]
        if overlaps:
            p = max(overlaps, key=lambda op: op[0])[1]
            onsets.append(p.onset_s - t.onset_s)
            offsets.append(p.offset_s - t.offset_s)
    stats = {"overlapped_fraction": round(len(onsets) / len(truth), 4) if truth else 0.0}
    for name, errors in (("onset", onsets), ("offset", offsets)):
        stats[f"{name}_error_median_s"] = round(float(np.median(errors)), 3) if errors else None
        stats[f"{name}_abs_error_mean_s"] = round(float(np.mean(np.abs(errors))), 3) if errors else None
    return stats


def detection_f1(positive: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """F1 of "score >= threshold" against bool positive, with its precision and recall."""
    said = scores >= threshold
    tp = int(np.sum(said & positive))
    return f1_score(tp, int(np.sum(said & ~positive)), int(np.sum(~said & positive)))


def best_f1_threshold(positive: np.ndarray, scores: np.ndarray, thresholds=TAG_THRESHOLDS) -> dict:
    """The threshold with the best F1 (the highest such threshold on ties: fewer false alarms)."""
    rows = [{"threshold": float(t), **detection_f1(positive, scores, t)} for t in thresholds]
    return max(reversed(rows), key=lambda r: r["f1"])


def tag_operating_points(truth: list[str], peaks: np.ndarray, tags: list[str],
                         min_positives: int = MIN_TAG_POSITIVES, phases: int = 1) -> dict:
    """On-thresholds for tag events from clip-level detection.

    truth: the tag of each clip; peaks [n_clips, n_tags]: each clip's highest smoothed score per tag.
    A tag with at least min_positives clips gets the threshold of its best F1 (its clip against all
    other clips); the others, and tags with no clips (learned from synthetic audio only), get the
    best F1 threshold over all (clip, tag) pairs pooled, which is steadier than a few clips. phases:
    each clip was played that many times (rows are plays): F1 counts plays, positives count clips."""
    truth_arr = np.asarray(truth)
    positive = truth_arr[:, None] == np.asarray(tags)[None, :]
    evaluated = positive.any(axis=0)
    pooled = best_f1_threshold(positive[:, evaluated].ravel(), peaks[:, evaluated].ravel())
    points = {}
    for j, tag in enumerate(tags):
        n = int(positive[:, j].sum()) // phases
        if n >= min_positives:
            point = best_f1_threshold(positive[:, j], peaks[:, j]) | {"from": "tag"}
        else:
            point = {"threshold": pooled["threshold"], **(detection_f1(positive[:, j], peaks[:, j], pooled["threshold"])
                                                          if n else {}), "from": "pooled"}
        points[tag] = {"positives": n, **point}
    return {"pooled": pooled, "min_positives": min_positives, "per_tag": points}
