"""`streamd review`: detection clips played, answered and kept as what they were, in the layout training reads.

The answers are checked as a pure function; the command runs as a subprocess, answered on its stdin, and once on the
virtual PulseAudio microphone, whose null sink's monitor hears what it plays."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from streamd.review import (KEYWORD_BEFORE_S, SOUND_BEFORE_S, Answer, Clip, Labels, keyword_part, parse, sound_part,
                            waiting)

SR = 16000
STREAMD = [sys.executable, "-m", "streamd.cli"]


def tone(seconds: float, hz: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return (level * np.hanning(len(t)) * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def detection_clips(folder: Path, keywords: list[str]) -> list[Path]:
    """Clips as the service writes them (2 s: 1.5 s before the event, 0.5 s after), each a tone of its own pitch
    (300 Hz, 400 Hz, ...) with its keyword event beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, keyword in enumerate(keywords):
        stem = folder / f"20261207-2100{i:02d}-{i}-{keyword}"
        audio = np.zeros(2 * SR, np.float32)
        audio[SR // 2:SR // 2 + SR] = tone(1.0, 300 + 100 * i)
        soundfile.write(stem.with_suffix(".wav"), audio, SR, subtype="PCM_16")
        stem.with_suffix(".json").write_text(json.dumps({"schema": 1, "type": "keyword", "keyword": keyword,
                                                         "score": 0.9, "time": 1.8e9 + i, "stream": "mic"}))
        paths.append(stem.with_suffix(".wav"))
    return paths


def tag_clips(folder: Path, tags: list[str], sound_s: float = 1.0) -> list[Path]:
    """Tag clips as the service writes them with clips.tags: 1.5 s before the tag's start, the tag (sound_s), 0.5 s
    after its end; the sound a tone of its own pitch (500 Hz, 600 Hz, ...) with its tag_end event beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, tag in enumerate(tags):
        stem = folder / f"20261207-2200{i:02d}-{i}-{tag}"
        audio = np.zeros(round((2 + sound_s) * SR), np.float32)
        audio[round(1.5 * SR):round((1.5 + sound_s) * SR)] = tone(sound_s, 500 + 100 * i)
        soundfile.write(stem.with_suffix(".wav"), audio, SR, subtype="PCM_16")
        end = 100 * SR
        stem.with_suffix(".json").write_text(json.dumps({
            "schema": 1, "type": "tag_end", "time": 1.8e9 + i, "stream": "mic", "position_samples": end,
            "tag": tag, "start_samples": end - round(sound_s * SR), "duration_s": sound_s,
            "peak_score": 0.8, "mean_score": 0.6, "reason": "off"}))
        paths.append(stem.with_suffix(".wav"))
    return paths


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def review(clips: Path, out: Path, answers: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*STREAMD, "review", str(clips), "--out", str(out), *args], input=answers, text=True,
                          capture_output=True, timeout=120, check=False, env=env)


def test_an_answer_is_the_keyword_another_word_other_speech_no_one_or_asks_again():
    go = Clip(Path("go.wav"), "go", 0.9, None, "mic")

    def answer(reply):
        return parse(reply, go)

    assert answer("y") == Answer("keep", "word", "go")
    assert answer(" Y ") == Answer("keep", "word", "go")
    assert answer("n") == Answer("keep", "word", "other speech")
    assert answer("b") == Answer("keep", "background", "household")
    assert answer("no") == Answer("keep", "word", "no")  # it heard "go"; it was "no"
    assert parse("No", go, Labels(keywords=frozenset({"no"}))) == Answer("keep", "word", "no")  # the keyword
    assert answer("Go") == Answer("keep", "word", "go") and answer("Hey Jo") == Answer("keep", "word", "Hey Jo")
    assert answer("hey chicken") == Answer("keep", "word", "hey chicken")
    assert answer("dog") == Answer("keep", "word", "dog")  # no tag of that name known: a word
    assert parse("Dog", go, Labels(tags=frozenset({"dog"}))) == Answer("keep", "sound", "dog")
    assert [answer(r).action for r in ("", "  ", "s", "q")] == ["again", "again", "skip", "quit"]
    with pytest.raises(ValueError, match="label: got 'a,b'"):
        answer("a,b")


def test_an_answer_to_a_tag_is_the_sound_another_sound_a_word_or_the_room():
    dog = Clip(Path("dog.wav"), "dog", 0.8, None, "mic", "tag", 1.0)

    def answer(reply):
        return parse(reply, dog, Labels(keywords=frozenset({"stop"}), tags=frozenset({"speech", "crying_baby"})))

    assert answer("y") == Answer("keep", "sound", "dog")
    assert answer("n") == Answer("keep", "sound", "other sound")  # none of the tags
    assert answer("b") == Answer("keep", "background", "household")
    assert answer("Crying baby") == Answer("keep", "sound", "crying_baby")  # a tag of the model, as it spells it
    assert answer("speech") == Answer("keep", "sound", "speech")
    assert answer("kettle") == Answer("keep", "sound", "kettle")  # a new sound
    assert answer("Stop") == Answer("keep", "word", "stop")  # a keyword is a word in any clip
    assert [answer(r).action for r in ("", "s", "q")] == ["again", "skip", "quit"]


def test_a_tag_kept_as_a_sound_starts_shortly_before_its_start():
    audio = np.arange(5 * SR, dtype=np.float32)  # 1.5 s before the tag, 3 s of it, 0.5 s after
    kept = sound_part(audio, post_roll_s=0.5, sound_s=3.0)
    assert len(kept) == round((SOUND_BEFORE_S + 3.0 + 0.5) * SR) and kept[-1] == audio[-1]
    assert len(sound_part(audio[2 * SR:], post_roll_s=0.5, sound_s=3.0)) == 3 * SR  # the ring held less: whole
    assert len(sound_part(audio, post_roll_s=0.5, sound_s=None)) == 5 * SR  # an event without its start: whole


def test_a_clip_kept_as_a_keyword_starts_shortly_before_its_event():
    audio = np.arange(2 * SR, dtype=np.float32)  # 1.5 s before the event, 0.5 s after
    kept = keyword_part(audio, post_roll_s=0.5)
    assert len(kept) == round((KEYWORD_BEFORE_S + 0.5) * SR) and kept[-1] == audio[-1]
    assert len(keyword_part(audio[SR:], post_roll_s=0.5)) == SR  # a clip cut short at the stream's start: whole


def test_only_clips_with_their_event_beside_them_and_not_yet_reviewed_wait(tmp_path):
    paths = detection_clips(tmp_path, ["computer", "stop", "go"])
    paths[1].with_suffix(".json").write_text("{not json")
    (tmp_path / ".20261207-210009-9-go.wav.part").write_bytes(b"")  # being written
    soundfile.write(tmp_path / "loose.wav", np.zeros(SR, np.float32), SR)  # no sidecar
    clips = waiting(tmp_path, reviewed={paths[0].name})
    assert [c.path for c in clips] == [paths[2]]
    assert clips[0] == Clip(paths[2], "go", 0.9, 1.8e9 + 2, "mic")


def test_review_keeps_each_clip_as_what_it_was_and_the_next_review_goes_on_where_it_ended(tmp_path):
    """y, another word, n, b and s in one review; end of input stops it with the background kept; a second review
    asks only the clip that was skipped and the ones not reached. What training reads from the folder: the
    positives, the negative word and a background split in time."""
    from export.data.splits import is_time_split
    from export.train import clip_role, read_recordings

    clips, out = tmp_path / "clips", tmp_path / "home"
    paths = detection_clips(clips, ["computer", "go", "stop", "up", "no", "off"])
    done = review(clips, out, "y\nno\nn\n\nb\ns\n", "--no-play", "--speaker", "ann")
    assert done.returncode == 0, done.stderr
    assert "6 detection clips in" in done.stdout and done.stdout.count('at 0.90, stream mic') == 6
    assert "kept the 1 clip answered b as one background, noise/household-001.wav" in done.stdout
    assert "kept 1 right, 1 another word, 1 other speech, 1 no one spoke (1 skipped" in done.stdout
    kept = rows(out / "manifest.csv")
    assert [(r["path"], r["labels"], r["speaker"]) for r in kept] == [
        ("kws/computer/ann-001.wav", "computer", "ann"), ("kws/no/ann-001.wav", "no", "ann"),
        ("kws/other_speech/ann-001.wav", "other speech", "ann"), ("noise/household-001.wav", "noise;household", "")]
    lengths = [len(soundfile.read(out / r["path"])[0]) for r in kept]
    assert lengths == [round((KEYWORD_BEFORE_S + 0.5) * SR)] * 2 + [2 * SR, 2 * SR]  # keywords cut, the rest whole
    played = soundfile.read(out / "kws/no/ann-001.wav", dtype="float32")[0]
    original = soundfile.read(paths[1], dtype="float32")[0]
    assert np.array_equal(played, original[-len(played):])  # the clip's own samples, its end
    assert [(r["clip"], r["kind"], r["label"]) for r in rows(out / "reviewed.csv")] == [
        (paths[0].name, "word", "computer"), (paths[1].name, "word", "no"), (paths[2].name, "word", "other speech"),
        (paths[3].name, "background", "household")]
    recorded = read_recordings(out / "manifest.csv")
    assert [clip_role(c) for c in recorded[:3]] == [("keyword", "computer"), ("keyword", "no"),
                                                    ("unknown", "other speech")]
    assert is_time_split(recorded[3])

    done = review(clips, out, "b\n", "--no-play")  # the skipped clip and the last; input ends after one answer
    assert done.returncode == 0, done.stderr
    assert "2 detection clips in" in done.stdout and paths[4].name in done.stdout and paths[5].name in done.stdout
    assert [r["path"] for r in rows(out / "manifest.csv")][-1] == "noise/household-002.wav"
    assert len(rows(out / "reviewed.csv")) == 5
    assert not list(out.rglob(".*.part"))
    assert len(list(clips.iterdir())) == 12 and all(p.exists() for p in paths)  # the clips folder is only read


def test_review_keeps_a_tag_clip_as_its_sound_another_sound_none_of_them_or_the_room(tmp_path):
    """The service's tag clips (clips.tags: each tag event whole, with its tag_end event): y keeps the sound from
    shortly before the tag's start, a name another sound (a tag of the model in its own spelling, or one it has no
    label for), n a sound that is none of the tags, b the room (a background); what training makes of each."""
    from export.labels import DEFAULT_LABELS
    from export.train import build_pools, read_recordings

    clips, out = tmp_path / "clips", tmp_path / "home"
    paths = tag_clips(clips, ["dog", "smoke_alarm", "glass_breaking", "siren", "crying_baby"], sound_s=2.0)
    done = review(clips, out, "y\nkettle\nn\nb\nchurch bells\n", "--no-play")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("for 2.0 s peak 0.80, stream mic") == 5
    assert "n: other sound (none of the tags)" in done.stdout
    assert "kept 1 right, 2 another sound, 1 other sound, 1 the room (0 skipped" in done.stdout
    kept = rows(out / "manifest.csv")
    assert [(r["path"], r["labels"]) for r in kept] == [
        ("tags/dog/clip-001.wav", "dog"), ("tags/kettle/clip-001.wav", "kettle"),
        ("tags/other_sound/clip-001.wav", "other sound"), ("tags/church_bells/clip-001.wav", "church_bells"),
        ("noise/household-001.wav", "noise;household")]
    lengths = [len(soundfile.read(out / r["path"])[0]) for r in kept]
    assert lengths == [round((SOUND_BEFORE_S + 2.0 + 0.5) * SR)] * 4 + [4 * SR]  # sounds cut, the background whole
    dog = soundfile.read(out / "tags/dog/clip-001.wav", dtype="float32")[0]
    assert np.array_equal(dog, soundfile.read(paths[0], dtype="float32")[0][-len(dog):])
    assert [(r["fired"], r["kind"], r["label"]) for r in rows(out / "reviewed.csv")] == [
        ("dog", "sound", "dog"), ("smoke_alarm", "sound", "kettle"), ("glass_breaking", "sound", "other sound"),
        ("crying_baby", "sound", "church_bells"), ("siren", "background", "household")]
    recorded = read_recordings(out / "manifest.csv")
    for clip in recorded:
        clip.attrs["recording"] = True  # as the recipe's recordings: are read
    pools = build_pools(recorded, SR, tuple(label.name for label in DEFAULT_LABELS))
    assert {name: len(v) for name, v in pools.tags.items()} == {"dog": 1, "church_bells": 1}
    assert len(pools.lookalikes) == 2  # kettle and other sound: heard, none of the tags on


def test_review_refuses_what_it_cannot_do_with_a_clear_line(tmp_path):
    done = review(tmp_path / "nowhere", tmp_path / "out", "", "--no-play")
    assert done.returncode == 1 and f"{tmp_path / 'nowhere'} is not a folder" in done.stderr
    assert not (tmp_path / "out").exists()  # nothing made for nothing
    detection_clips(tmp_path / "clips", ["stop"])
    done = review(tmp_path / "clips", tmp_path / "out", "", "--no-play", "--speech-label", "a;b")
    assert done.returncode == 2 and "label: got 'a;b'" in done.stderr
    (tmp_path / "file").write_text("not a folder")
    done = review(tmp_path / "clips", tmp_path / "file" / "out", "", "--no-play")
    assert done.returncode == 1 and "--out: cannot write to" in done.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    done = review(empty, tmp_path / "out", "", "--no-play")
    assert done.returncode == 0 and "no detection clips to review" in done.stdout
    [broken] = detection_clips(empty, ["go"])
    broken.write_text("not audio")
    done = review(empty, tmp_path / "out", "y\n", "--no-play")
    assert done.returncode == 0 and f"{broken.name}: skipped: cannot read" in done.stdout, done.stdout
    assert (tmp_path / "out" / "manifest.csv").read_text().splitlines() == ["path,labels,speaker,duration_s"]


def test_review_plays_each_clip_on_the_output_and_goes_on_without_one(vmic, tmp_path):
    """Through the virtual PulseAudio device, what review plays reaches the null sink (its monitor recorded with
    parecord); where no sound server is reachable it says so once and the answers still keep the clips."""
    clips, out = tmp_path / "clips", tmp_path / "home"
    paths = detection_clips(clips, ["computer"])
    heard = tmp_path / "monitor.wav"
    recorder = subprocess.Popen(["parecord", f"--device={vmic.sink_name}.monitor", "--rate=16000", "--channels=1",
                                 "--format=s16le", "--file-format=wav", str(heard)],
                                env=vmic._child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    done = review(clips, out, "y\n", env={**os.environ, **vmic.env})
    time.sleep(0.5)
    recorder.terminate()
    recorder.wait(timeout=10)
    assert done.returncode == 0 and "cannot play" not in done.stdout, (done.stdout, done.stderr)
    monitor = soundfile.read(heard, dtype="float32")[0]
    sound = soundfile.read(paths[0], dtype="float32")[0][SR // 2:SR // 2 + SR]  # the clip's tone
    c = np.correlate(monitor, sound, "valid")
    lag = int(np.argmax(c))
    assert c[lag] / (np.linalg.norm(sound) * np.linalg.norm(monitor[lag:lag + SR]) + 1e-9) > 0.9  # the clip itself

    nowhere = {**os.environ, **vmic.env, "PULSE_SERVER": f"unix:{tmp_path}/no-server"}
    paths = detection_clips(tmp_path / "clips2", ["stop", "go"])
    done = review(tmp_path / "clips2", out, "n\nn\n", env=nowhere)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("cannot play") == 1, done.stdout
    assert [r["labels"] for r in rows(out / "manifest.csv")][-2:] == ["other speech", "other speech"]
