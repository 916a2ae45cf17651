"""The evaluation's PNG plots (matplotlib, Agg): confusion matrices, DET curves, tag average precision."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.metrics import TARGET_FA_PER_H


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
