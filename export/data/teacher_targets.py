"""Soft tag targets from the EfficientAT teacher, computed once per clip and cached.

For every 160 ms column of a clip the teacher hears the window of ``window_columns`` columns that
ends there (zeros before the clip starts) and gives a probability per tag (NaN for the tags it has
no AudioSet class for), or, with ``audioset=True``, its 527 AudioSet probabilities as they are (the
targets of a training-only head, ``teacher: {audioset_weight}`` in a recipe). Training scenes then take
the targets of the columns they cut out, so every column of every tag scene carries the teacher's
opinion at no cost per step (running the teacher in the loop costs ~25 ms per window on this CPU).

    python -m export.data.teacher_targets export/recipes/sat-kd.yaml   # precompute, with progress

Cache: ~/.cache/streamd/teacher/ (or $STREAMD_CACHE/teacher), keyed by the decoded audio's file
key, the teacher checkpoint and the window geometry.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from export.data.audio import cache_root, file_digest

BATCH_WINDOWS = 64


def cache_dir() -> Path:
    return cache_root() / "teacher"


def column_windows(audio: np.ndarray, column_samples: int, window_samples: int) -> np.ndarray:
    """[n_columns, window_samples]: the window ending at each column's end (zero-padded on the left;
    a last partial column is padded with zeros on the right)."""
    n_columns = -(-len(audio) // column_samples)
    padded = np.concatenate([np.zeros(window_samples - column_samples, np.float32), audio.astype(np.float32),
                             np.zeros(n_columns * column_samples - len(audio), np.float32)])
    starts = np.arange(n_columns) * column_samples
    return np.stack([padded[s : s + window_samples] for s in starts])


@torch.no_grad()
def column_targets(teacher, audio: np.ndarray, column_samples: int, window_samples: int,
                   audioset: bool = False) -> np.ndarray:
    """float16 [n_columns, n_tags] teacher tag probabilities (NaN where the teacher has no class);
    audioset: [n_columns, 527], every AudioSet class."""
    windows = torch.from_numpy(column_windows(audio, column_samples, window_samples))
    probs = teacher if audioset else teacher.tag_probs
    out = [probs(windows[i : i + BATCH_WINDOWS]) for i in range(0, len(windows), BATCH_WINDOWS)]
    return torch.cat(out).numpy().astype(np.float16)


class TeacherTargets:
    """Cached column targets of one teacher at one geometry; the teacher loads on the first miss."""

    def __init__(self, teacher_dir: Path, column_samples: int, window_columns: int, audioset: bool = False):
        self.teacher_dir = Path(teacher_dir)
        self.column_samples = column_samples
        self.window_samples = window_columns * column_samples
        self.audioset = audioset
        self._teacher = None
        checkpoint = next(self.teacher_dir.glob("*.pt"))
        # by content, the clip's and the teacher's, so a fresh copy of the same data finds its targets
        self._tag = f"{file_digest(checkpoint)}|{column_samples}|{self.window_samples}" + ("|audioset" if audioset else "")

    def key(self, path: Path) -> str:
        return hashlib.sha1(f"{file_digest(path)}|{self._tag}".encode()).hexdigest()

    def cached(self, path: Path) -> bool:
        key = self.key(path)
        return (cache_dir() / key[:2] / f"{key}.npy").exists()

    def __call__(self, path: Path, audio: np.ndarray) -> np.ndarray:
        key = self.key(path)
        file = cache_dir() / key[:2] / f"{key}.npy"
        if file.exists():
            return np.load(file)
        if self._teacher is None:
            from export.teacher_efficientat import EfficientATTeacher

            self._teacher = EfficientATTeacher(self.teacher_dir).eval()
        targets = column_targets(self._teacher, audio, self.column_samples, self.window_samples, self.audioset)
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, targets)
        tmp.replace(file)
        return targets


def main(argv=None) -> None:
    import argparse
    import logging

    from tqdm import tqdm

    from export.data.audio import load_audio
    from export.train import build, clip_role, load_recipe, recipe_keywords, recipe_labels, rooms_taught, split_clips

    parser = argparse.ArgumentParser(description="Precompute the teacher's column targets for a recipe's tag clips "
                                                 "(and its noise/ recordings, with scene noise_unsure or "
                                                 "noise_teacher_weight).")
    parser.add_argument("recipe")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    recipe = load_recipe(args.recipe)
    kd = recipe.teacher
    root = Path(__file__).resolve().parents[2]
    window_columns = int(kd.get("tag_window_columns", 8))
    labels = recipe_labels(recipe)
    label_names = tuple(label.name for label in labels)
    column_samples = build(recipe, labels).card.hop_samples[0]  # as training keys the cache
    train, _, noise_files = split_clips(recipe, root)
    keywords = recipe_keywords(recipe)  # a new keyword's clips are words, as training takes them, not tags
    roles = [clip_role(c, keywords) for c in train]
    clips = [c for c, (role, name) in zip(train, roles) if role == "tag" and name in label_names]
    rooms = noise_files if rooms_taught(recipe.scene) else []  # the recorded rooms, whole: training cuts them in time
    kinds = [False, True] if kd.get("audioset_weight") else [False]
    for audioset in kinds:
        targets = TeacherTargets(root / kd["efficientat"], column_samples, window_columns, audioset=audioset)
        every = clips if audioset else clips + rooms  # the rooms' AudioSet columns have no use
        todo = [c for c in every if not targets.cached(c.path)]
        what = "AudioSet" if audioset else "tag"
        rooms_said = f" and {len(every) - len(clips)} recorded rooms" if len(every) > len(clips) else ""
        print(f"{len(clips)} tag clips{rooms_said}, {len(every) - len(todo)} with {what} targets cached already")
        for clip in tqdm(todo, desc=f"teacher {what} targets", unit="clip", mininterval=5):
            targets(clip.path, load_audio(clip.path, 16000))


if __name__ == "__main__":
    main()
