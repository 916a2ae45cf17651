"""Adapters from corpora on disk to lists of Clip: a Speech Commands-style folder tree, an
AudioSet-style segments CSV, and ../shared/data (or any folder with a manifest.csv)."""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path

from export.data.manifest import Clip, read_manifest
from export.labels import KEYWORDS

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
BACKGROUND_FOLDER = "_background_noise_"
# ../shared/data beside the repository (as in CI), or $STREAMD_SHARED_DATA.
SHARED_DATA = Path(os.environ.get("STREAMD_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))

# AudioSet display names for labels of the default model; others become slug(display_name).
AUDIOSET_NAMES = {
    "Smoke detector, smoke alarm": "smoke_alarm",
    "Fire alarm": "smoke_alarm",
    "Speech": "speech",
    "Dog": "dog",
    "Bark": "dog",
    "Cat": "cat",
    "Siren": "siren",
    "Vehicle horn, car horn, honking": "car_horn",
    "Vacuum cleaner": "vacuum_cleaner",
    "Toilet flush": "toilet_flush",
    "Crying, sobbing": "crying_baby",
    "Baby cry, infant cry": "crying_baby",
    "Glass": "glass_breaking",
    "Shatter": "glass_breaking",
    "Knock": "door_wood_knock",
    "Snoring": "snoring",
    "Cough": "coughing",
    "Sneeze": "sneezing",
    "Laughter": "laughing",
    "Typing": "keyboard_typing",
    "Rain": "rain",
    "Thunderstorm": "thunderstorm",
    "Wind": "wind",
    "Drill": "drilling",
    "Jackhammer": "jackhammer",
    "Air conditioning": "air_conditioner",
    "Gunshot, gunfire": "gun_shot",
}


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)


def _read_list(path: Path) -> set[str]:
    return set(path.read_text().split()) if path.exists() else set()


def speech_commands_tree(root: str | Path, keywords=KEYWORDS) -> list[Clip]:
    """A Speech Commands-style tree: `<root>/<word>/<speaker>_nohash_<n>.wav` (the same layout works
    for your own recordings: one folder per word, any file names).

    Words in `keywords` are labelled with the word, other words `_unknown_;word=<w>`, files in
    `_background_noise_/` `noise;<name>`. The speaker is the file-name part before `_nohash_`
    (empty if absent). Where validation_list.txt / testing_list.txt exist, each clip carries
    `sc_split=train|validation|testing` (the official split; ours is splits.split_of)."""
    root = Path(root).resolve()
    validation, testing = _read_list(root / "validation_list.txt"), _read_list(root / "testing_list.txt")
    has_lists = bool(validation or testing)
    clips = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        word = folder.name
        for path in audio_files(folder):
            if word == BACKGROUND_FOLDER:
                clips.append(Clip(path, ("noise", path.stem)))
                continue
            labels = (word,) if word in keywords else ("_unknown_", f"word={word}")
            if has_lists:
                rel = f"{word}/{path.name}"
                labels += (f"sc_split={'validation' if rel in validation else 'testing' if rel in testing else 'train'}",)
            speaker = path.name.split("_nohash_")[0] if "_nohash_" in path.name else ""
            clips.append(Clip(path, labels, speaker))
    log.info("%s: %d clips", root, len(clips))
    return clips


def read_class_index(csv_path: str | Path) -> dict[str, str]:
    """AudioSet class_labels_indices.csv (`index,mid,display_name`) -> {mid: display_name}."""
    with open(csv_path, newline="") as f:
        return {row["mid"]: row["display_name"] for row in csv.DictReader(f)}


def _segment_rows(csv_path: Path):
    """Rows of an AudioSet segments CSV: `# comments`, then `YTID, start_seconds, end_seconds, "m1,m2"`."""
    with open(csv_path, newline="") as f:
        lines = (line for line in f if line.strip() and not line.startswith("#"))
        for row in csv.reader(lines, skipinitialspace=True):
            yield row[0], float(row[1]), float(row[2]), [m for m in row[3].split(",") if m]


def _candidate_stems(ytid: str, start_s: float) -> list[str]:
    return [f"{ytid}_{start_s:.3f}", f"{ytid}_{int(start_s * 1000)}", f"{ytid}_{int(start_s)}", ytid, f"Y{ytid}"]


def audioset_csv(csv_path: str | Path, audio_root: str | Path, class_index_csv: str | Path | None = None,
                 names: dict[str, str] = AUDIOSET_NAMES) -> list[Clip]:
    """Clips of an AudioSet-style segments CSV whose audio is under audio_root (searched recursively).

    A segment's file is the first that exists of `<YTID>_<start_seconds:.3f>`, `<YTID>_<start_ms>`,
    `<YTID>_<int start_seconds>`, `<YTID>`, `Y<YTID>` (the last two as written by common AudioSet
    downloaders, holding the 10 s segment itself), with any extension in AUDIO_EXTENSIONS.
    Labels: mids mapped to display names by class_index_csv (default: class_labels_indices.csv
    beside the CSV), then by `names` to this project's labels, else slug(display name); mids that
    are not in the index stay mids. Segments without a file are skipped and counted in the log."""
    csv_path = Path(csv_path)
    index_path = Path(class_index_csv) if class_index_csv else csv_path.parent / "class_labels_indices.csv"
    mid_names = read_class_index(index_path) if index_path.exists() else {}
    files = {}
    for dirpath, _, filenames in os.walk(audio_root):
        for name in filenames:
            stem, ext = os.path.splitext(name)
            if ext.lower() in AUDIO_EXTENSIONS:
                files.setdefault(stem, Path(dirpath, name).resolve())
    clips, missing = [], 0
    for ytid, start_s, end_s, mids in _segment_rows(csv_path):
        path = next((files[s] for s in _candidate_stems(ytid, start_s) if s in files), None)
        if path is None:
            missing += 1
            continue
        labels = []
        for mid in mids:
            display = mid_names.get(mid)
            label = names.get(display, slug(display)) if display else mid
            if label not in labels:
                labels.append(label)
        clips.append(Clip(path, tuple(labels), duration_s=end_s - start_s))
    log.info("%s: %d clips, %d segments without audio under %s", csv_path, len(clips), missing, audio_root)
    return clips


def shared_data(root: str | Path = SHARED_DATA) -> list[Clip]:
    """../shared/data, or any folder with a manifest.csv (`path,labels[,speaker][,duration_s]`)."""
    return read_manifest(Path(root) / "manifest.csv")
