"""Lay out keyword clips, or sound clips, as a folder that export.evaluate reads like ../shared/data.

The clips come from synthetic keyword manifests (export.data.synth_speech) or from Speech Commands-style
trees (`<root>/<word>/<speaker>_nohash_<n>.wav`: the official corpus, or your own recordings, one folder
per word). The ten commands, `_unknown_` clips and a tree's `_silence_/` go to kws/gsc_v2/<label>/ (the
keyword task's 11- and 12-class accuracy), any other keyword, such as the wake word (a tree's
`computer/` or `hey_computer/`), to kws/other/<label>/ (the wake-word task's false-reject table), a
tree's `_background_noise_/` to noise/. Files are linked, not copied. `--sc-split testing` keeps only
the clips of a tree's testing_list.txt (the official test speakers; `validation` and `train` likewise).
`--negatives DATA` links DATA's noise/ recordings in as well, so the wake-word task has a stream to
run; false accepts on them are not a rate on real speech, only the false rejects of the table are what
such a folder measures. `--keywords "hey kitchen"` makes a tree's `hey_kitchen/` (or `hey kitchen/`) the
positives of a keyword of your own, labelled as the recipe's new_keywords spells it (else it is other words).

A folder laid out here is also what a recipe's `recordings:` takes (docs/data.md "Adding a sound"): training
reads its training split, and scripts/ship.sh evaluates its validation split beside ../shared/data.

With `--tags`, each source is a folder of sound classes instead (`<root>/<class>/<clip>.wav`, class
names as the model's tags, or ESC-50's and UrbanSound8K's, e.g. `dog_bark`): its clips go to
tags/<root's name>/<class>/, where the tags task (top-1, average precision) and the long mixture find them.

    python -m export.data.synth_speech --engines festival --keywords-only --variants 40 --seed 1000 --out /tmp/festival
    python -m export.data.eval_set /tmp/festival/manifest.csv /tmp/festival-eval --negatives ../shared/data
    python -m export.evaluate models/streamd-sat.onnx --data /tmp/festival-eval --split all --hop-ms 160 \\
        --tasks kws,wakeword --out /tmp/festival-results

    python -m export.data.eval_set ~/data/speech_commands_v0.02 /tmp/sc-test --sc-split testing
    python -m export.evaluate models/streamd-sat.onnx --data /tmp/sc-test --split all --hop-ms 160 \\
        --tasks kws --out /tmp/sc
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from export.data.manifest import Clip, read_manifest, write_manifest
from export.data.sources import AUDIO_EXTENSIONS, audio_files, speech_commands_tree
from export.labels import COMMANDS, KEYWORDS, SILENCE, UNKNOWN, WAKE_WORD

TREE_KEYWORDS = KEYWORDS + ("hey_" + WAKE_WORD, SILENCE)  # a tree's folders labelled as themselves, not _unknown_
SC_SPLITS = ("train", "validation", "testing")


def folder_of(clip: Clip) -> str:
    if clip.label == "noise":
        return "noise"
    if clip.attr("tag_folder"):  # a sound class of sound_classes
        return f"tags/{clip.attr('tag_folder')}/{clip.label}"
    if clip.label in COMMANDS + (UNKNOWN, SILENCE):
        return f"kws/gsc_v2/{clip.label}"
    return f"kws/other/{clip.label.replace(' ', '_')}"


def passed_over(root: Path) -> list[Path]:
    """Files in root's folders that are not audio the clips are read from (a phone's .m4a): said, not silently left."""
    return sorted(p for folder in root.iterdir() if folder.is_dir() for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() not in AUDIO_EXTENSIONS + (".txt", ".csv", ".md"))


def sound_classes(root: Path) -> list[Clip]:
    """A folder of sound classes: each audio file under <root>/<class>/ is a clip of that class."""
    clips = [Clip(path, (folder.name, f"tag_folder={root.resolve().name}"))
             for folder in sorted(p for p in root.iterdir() if p.is_dir()) for path in audio_files(folder)]
    if not clips:
        raise SystemExit(f"{root}: no audio files in class folders (<root>/<class>/<clip>.wav)")
    return clips


def read_source(source: Path, sc_split: str | None = None, tags: bool = False,
                keywords: tuple[str, ...] = ()) -> list[Clip]:
    """A manifest's clips, a folder of sound classes (tags), or a Speech Commands tree's (only sc_split's, if given);
    a tree's folder of one of keywords (a recipe's new_keywords; `hey kitchen/` or `hey_kitchen/`) is labelled
    with the keyword as the recipe spells it, not `_unknown_`."""
    if tags:
        return sound_classes(source)
    if not source.is_dir():
        return read_manifest(source)
    spelt = {folder: word for word in keywords for folder in (word, word.replace(" ", "_"))}
    clips = [dataclasses.replace(c, labels=(spelt[c.label],) + c.labels[1:]) if c.label in spelt else c
             for c in speech_commands_tree(source, keywords=TREE_KEYWORDS + tuple(spelt))]
    if sc_split is None:
        return clips
    if not any(c.attr("sc_split") for c in clips):
        raise SystemExit(f"{source}: --sc-split needs its validation_list.txt / testing_list.txt")
    return [c for c in clips if c.attr("sc_split") == sc_split or c.label == "noise"]


def _link(target: Path, link: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.resolve() != target.resolve():
            raise SystemExit(f"{link} exists and is not a link to {target}; use an empty --out folder")
    else:
        os.symlink(target, link)
    return link


def lay_out(clips: list[Clip], out_dir: Path, negatives: Path | None = None) -> list[Clip]:
    """Link clips (and negatives/noise/*) under out_dir; write and return its manifest's clips."""
    out_dir = Path(out_dir).resolve()  # the links themselves stay unresolved: their folders are the groups
    laid = []
    for i, clip in enumerate(clips):
        # the index keeps clips of equal file names (two manifests, two words) apart
        link = _link(clip.path, out_dir / folder_of(clip) / f"{i:05d}_{clip.path.name}")
        laid.append(dataclasses.replace(clip, path=link.absolute()))
    if negatives is not None:
        noise = [c for c in read_manifest(Path(negatives) / "manifest.csv") if c.label == "noise"]
        if not noise:
            raise SystemExit(f"{negatives}/manifest.csv lists no noise clips")
        for clip in noise:
            link = _link(clip.path, out_dir / "noise" / clip.path.name)
            laid.append(dataclasses.replace(clip, path=link.absolute()))
    write_manifest(laid, out_dir / "manifest.csv")
    return laid


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", type=Path,
                   help="synthetic keyword manifests (export.data.synth_speech) or Speech Commands-style folders")
    p.add_argument("out", type=Path, help="evaluation folder to write (links and manifest.csv)")
    p.add_argument("--sc-split", choices=SC_SPLITS, help="of a Speech Commands tree, only this official split")
    p.add_argument("--tags", action="store_true",
                   help="the sources are folders of sound classes (<root>/<class>/*.wav)")
    p.add_argument("--negatives", type=Path, help="data folder whose noise/ recordings to link in (../shared/data)")
    p.add_argument("--keywords", nargs="+", default=[], metavar="WORD",
                   help="keywords of your own (a recipe's new_keywords): a tree's folder of one (`hey_kitchen/`) holds "
                        "its positives, laid under kws/other/, rather than other words")
    p.add_argument("--voice", metavar="NAME",
                   help="only the clips whose speaker names NAME (a voice a recipe's held_out_voices kept out)")
    args = p.parse_args(argv)
    clips = [c for source in args.sources for c in read_source(source, args.sc_split, args.tags, tuple(args.keywords))]
    if args.voice:
        clips = [c for c in clips if args.voice in c.speaker]
    for source in (s for s in args.sources if s.is_dir()):
        if other := passed_over(source):
            kinds = "/".join(AUDIO_EXTENSIONS)
            print(f"{source}: left out {len(other)} file{'s' * (len(other) > 1)} not in {kinds} (e.g. {other[0]}); "
                  "convert them: ffmpeg -i IN -ac 1 -ar 16000 OUT.wav", file=sys.stderr)
    laid = lay_out(clips, args.out, args.negatives)
    n_clips = sum(1 for c in laid if c.label != "noise")
    print(f"{n_clips} {'tag' if args.tags else 'keyword'} clips, {len(laid) - n_clips} noise recordings "
          f"-> {args.out}/manifest.csv")


if __name__ == "__main__":
    main()
