"""Which clips the evaluation reads, from a data root laid out like ../shared/data, and what each one is."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from export.data.audio import load_audio
from export.data.manifest import Clip, manifest_file, read_manifest
from export.labels import WAKE_WORD, tag_name

SPEECH_TAG = "speech"
POSITIVE_ALIASES = {WAKE_WORD: (WAKE_WORD, "hey_" + WAKE_WORD)}  # clip labels that contain the keyword
# the negatives: speech, noise, tag and not-wake-word folders, and the look-alike folders export.data.synth_alarms
# writes, so that its output can be evaluated as negatives
NEGATIVE_GROUPS = ("speech", "noise", "tags", "kws/precise/not_wake_word", "beep", "chime", "squeak",
                   "lookalike")
TAG_GROUPS = ("tags", "speech")  # tags/esc50, tags/urbansound8k and any folder of one's own under tags/


def in_group(clip: Clip, groups: dict[Path, str], prefix: str) -> bool:
    """Is the clip in folder prefix ('kws/gsc_v2', 'speech', ...) of the data root, or below it?"""
    group = groups.get(clip.path, "")
    return group == prefix or group.startswith(prefix + "/")


def select_clips(root: Path, split: str) -> tuple[list[Clip], dict[Path, str]]:
    """The manifest's clips (all, or those export.data.splits puts in split) and each clip's folder
    as written in the manifest ('kws/gsc_v2/yes'), which holds even where folders are links.
    Long noise recordings are split in time, not by file: they stay, and clip_audio cuts them.
    root: a data folder, or its manifest (manifest_file)."""
    manifest = manifest_file(root)
    clips = read_manifest(manifest)
    with open(manifest, newline="") as f:
        folders = [Path(row["path"]).parent.as_posix() for row in csv.DictReader(f)]
    groups = {c.path: folder for c, folder in zip(clips, folders)}
    if split != "all":
        from export.data.splits import is_time_split, split_of  # training's rule: validation stays unseen

        clips = [c for c in clips if is_time_split(c) or split_of(c) == split]
    return clips, groups


def select_sources(sources: list[Path], split: str) -> tuple[list[Clip], dict[Path, str]]:
    """select_clips of several data folders (../shared/data and your recordings) as one: each clip once, in
    the order given, its folder relative to its own source."""
    clips, groups = [], {}
    for source in sources:
        more, folders = select_clips(source, split)
        clips += [c for c in more if c.path not in groups]
        groups = {**folders, **groups}  # a clip listed twice keeps its first source's folder
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


def tag_truth(clip: Clip, groups: dict[Path, str]) -> str | None:
    if in_group(clip, groups, "speech"):
        return SPEECH_TAG
    if in_group(clip, groups, "tags"):
        return tag_name(clip.label)
    return None


def tag_clips(clips: list[Clip], groups: dict[Path, str]) -> list[tuple[Clip, str | None]]:
    """The clips under TAG_GROUPS with their tag (tag_truth; None where there is none)."""
    return [(c, tag_truth(c, groups)) for c in clips if any(in_group(c, groups, g) for g in TAG_GROUPS)]


def tag_source(group: str) -> str:
    """The dataset a tag clip comes from: its folder's first two parts under tags/ ('tags/esc50'), else the first."""
    parts = group.split("/")
    return "/".join(parts[:2]) if parts[0] == "tags" else parts[0]
