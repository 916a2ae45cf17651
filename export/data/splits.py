"""The validation split that training never sees: a pure function of each clip's path and speaker.

A clip is in "val" iff int(sha256("val:" + group_key(clip))) % VAL_MODULUS == 0 (about 20% of groups).
The group keeps together what must not straddle the split:

* clips with a speaker (Speech Commands folders, synthetic voices): the speaker;
* ESC-50 (`<fold>-<freesound id>-<take>-<target>`) and UrbanSound8K (`<fsID>-<classID>-<occ>-<slice>`):
  the Freesound recording id, under one key space ("freesound:<id>"), since some clips of the two
  datasets come from the same recording;
* everything else (Mycroft Precise, speech/, synthetic alarms, _silence_ excerpts, your own files):
  the file name.

A manifest whose named speakers would all fall on one side (one speaker, or a household's few that all hash to
training) splits those clips by file name instead (`by_file_where_one_sided`, applied by `read_manifest`, so
training and evaluation agree): otherwise nothing of them would train, or nothing be held out to measure.

This is independent of the dev/held-out rule in ../shared/data/README.md (sha256(speaker) % 2).
Long noise recordings (`noise/`) are split in time instead: `time_split(audio, split)` gives the first
80% to train and the last 20% to val; `split_of` calls them "train", so use `is_time_split` first.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from export.data.manifest import Clip

VAL_MODULUS = 5  # 1 in 5 groups validates
NOISE_TRAIN_FRACTION = 0.8

_ESC50 = re.compile(r"^\d+-(\d+)-[A-Z]-\d+$")  # 4-161099-A-47
_URBANSOUND = re.compile(r"^(\d+)-\d+-\d+-\d+$")  # 127873-0-0-0


def is_time_split(clip: Clip) -> bool:
    """Long background recordings: split in time, not by file."""
    return clip.label == "noise" or "/noise/" in clip.path.as_posix() or "/_background_noise_/" in clip.path.as_posix()


def group_key(clip: Clip) -> str:
    """What keeps related clips on the same side of the split (see module docstring)."""
    if clip.speaker and clip.attrs.get("split_by") != "file":
        return f"speaker:{clip.speaker}"
    m = _ESC50.match(clip.path.stem) or _URBANSOUND.match(clip.path.stem)
    if m is not None:
        return f"freesound:{m.group(1)}"
    return f"file:{clip.path.name}"


def is_val_key(key: str) -> bool:
    return int(hashlib.sha256(f"val:{key}".encode()).hexdigest(), 16) % VAL_MODULUS == 0


def split_of(clip: Clip) -> str:
    """"train" or "val". Noise recordings (is_time_split) are "train" here; cut them with time_split."""
    if is_time_split(clip):
        return "train"
    return "val" if is_val_key(group_key(clip)) else "train"


def by_file_where_one_sided(clips: list[Clip]) -> bool:
    """Mark a manifest's speaker-named clips to split by file name (attrs["split_by"]) where their speakers would
    all fall on one side of the split; True if it did. The validation part then hears speakers training heard."""
    named = [c for c in clips if c.speaker and not is_time_split(c)]
    if len(named) < 2 or len({is_val_key(f"speaker:{c.speaker}") for c in named}) > 1:
        return False
    for clip in named:
        clip.attrs["split_by"] = "file"
    return True


def time_split(audio: np.ndarray, split: str) -> np.ndarray:
    """The split's part of a long recording: first NOISE_TRAIN_FRACTION trains, the rest validates."""
    cut = int(NOISE_TRAIN_FRACTION * len(audio))
    if split == "train":
        return audio[:cut]
    if split == "val":
        return audio[cut:]
    raise ValueError(f"split must be 'train' or 'val', not {split!r}")
