"""Clips from manifests: a CSV like ../shared/data/manifest.csv, a Speech Commands folder tree, or an
AudioSet-style CSV. Every source becomes a list of Clip, so training code has one input type."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Clip:
    path: Path
    labels: tuple[str, ...]  # class name first; extra labels as key=value
    speaker: str = ""
    duration_s: float = 0.0
    attrs: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def label(self) -> str:
        return self.labels[0]

    def attr(self, key: str, default: str = "") -> str:
        prefix = key + "="
        return next((l[len(prefix):] for l in self.labels if l.startswith(prefix)), default)


def manifest_file(source: Path) -> Path:
    """A data folder's manifest.csv, or source itself where it is a manifest."""
    return source if source.suffix == ".csv" else source / "manifest.csv"


def read_manifest(csv_path: str | Path) -> list[Clip]:
    """Rows of path,labels[,speaker][,duration_s]; paths relative to the CSV's folder. Where the speakers named
    would all fall on one side of the validation split, those clips split by file (splits.by_file_where_one_sided)."""
    from export.data.splits import by_file_where_one_sided  # splits types with Clip, defined here

    csv_path = Path(csv_path)
    clips = []
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            clips.append(Clip(
                path=(csv_path.parent / row["path"]).resolve(),
                labels=tuple(l for l in row["labels"].split(";") if l),
                speaker=row.get("speaker", "") or "",
                duration_s=float(row.get("duration_s") or 0.0),
                attrs={k: v for k, v in row.items() if k not in ("path", "labels", "speaker", "duration_s")},
            ))
    by_file_where_one_sided(clips)
    return clips


def write_manifest(clips: list[Clip], csv_path: str | Path) -> Path:
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "labels", "speaker", "duration_s"])
        for c in clips:
            try:
                path = c.path.relative_to(csv_path.parent.resolve())
            except ValueError:
                path = c.path
            writer.writerow([str(path), ";".join(c.labels), c.speaker, f"{c.duration_s:.6f}"])
    return csv_path
