"""`streamd record`: takes from a microphone into a recordings folder that training and the evaluation read.

The trimming and layout are checked on arrays; the command itself runs as a subprocess on the virtual PulseAudio
microphone (tests/vmic.py), answering its prompts by playing a made-up word (or nothing) into it."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from streamd.record import MARGIN_S, Layout, Manifest, next_name, trim, write_wav

SR = 16000
STREAMD = [sys.executable, "-m", "streamd.cli"]


def word(seconds: float = 0.6, level: float = 0.3) -> np.ndarray:
    """A word-like burst: a few harmonics of 150 Hz under a smooth envelope."""
    t = np.arange(round(seconds * SR)) / SR
    voice = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 6))
    return (level * np.hanning(len(t)) * voice / np.max(np.abs(voice))).astype(np.float32)


def take(lead_s: float, body: np.ndarray, total_s: float = 2.0, noise: float = 1e-4) -> np.ndarray:
    audio = noise * np.random.default_rng(0).standard_normal(round(total_s * SR)).astype(np.float32)
    start = round(lead_s * SR)
    audio[start:start + len(body)] += body[: len(audio) - start]
    return audio


def test_a_take_is_cut_to_its_word_with_a_margin_or_asked_again_with_the_reason():
    body = word()
    start, end = trim(take(0.5, body), "word")
    loud = np.flatnonzero(np.abs(body) > 0.3 * 10 ** (-35 / 20) * 0.5)  # roughly where the envelope is on
    margin = round(MARGIN_S["word"] * SR)
    assert abs(start - (round(0.5 * SR) + loud[0] - margin)) <= 0.03 * SR
    assert abs(end - (round(0.5 * SR) + loud[-1] + margin)) <= 0.03 * SR
    assert "nothing louder than the room" in trim(take(0.5, np.zeros(10, np.float32)), "word")
    assert "nothing louder than the room" in trim(np.zeros(2 * SR, np.float32), "word")  # digital silence
    assert "begun before the take" in trim(take(0.0, body[len(body) // 3:]), "word")  # already saying it
    assert "ran past the end" in trim(take(1.7, body), "word")
    assert "clipped" in trim(take(0.5, 4 * body), "word")
    start, end = trim(take(1.7, body), "sound")  # a sound may run on past the take
    assert end == 2 * SR and abs(start - (round(1.7 * SR) + loud[0] - round(MARGIN_S["sound"] * SR))) <= 0.03 * SR


def test_labels_lay_out_as_the_shared_data_and_numbering_goes_on(tmp_path):
    assert Layout.of("word", "hey kitchen") == Layout(Path("kws/hey_kitchen"), "hey kitchen")
    assert Layout.of("sound", "cuckoo") == Layout(Path("tags/cuckoo"), "cuckoo")
    assert Layout.of("background", "tv") == Layout(Path("noise"), "noise;tv")
    for bad in ("", " ", "a,b", "a;b", "x=1", "a/b"):
        with pytest.raises(ValueError, match="label: got"):
            Layout.of("word", bad)
    (tmp_path / "take-001.wav").touch()
    (tmp_path / "take-007.wav").touch()
    (tmp_path / "take-x.wav").touch()
    assert next_name(tmp_path, "take") == tmp_path / "take-008.wav"
    assert next_name(tmp_path, "me") == tmp_path / "me-001.wav"
    (tmp_path / "manifest.csv").write_text("path,labels,speaker,duration_s,licence\na.wav,yes,,1.0,CC0\n")
    Manifest(tmp_path).add({"path": "b.wav", "labels": "no", "duration_s": "2.0"})  # an existing manifest's columns
    assert (tmp_path / "manifest.csv").read_text().splitlines()[-1] == "b.wav,no,,2.0,"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.csv").write_text("file,label\n")
    with pytest.raises(Exception, match="not a manifest"):
        Manifest(tmp_path / "other")


def test_the_room_level_tells_a_muted_microphone_from_a_quiet_room():
    from streamd.record import MUTED_DB, room_level_db

    quiet_room = 10 ** (-70 / 20) * np.random.default_rng(0).standard_normal(SR).astype(np.float32)  # -70 dBFS
    assert abs(room_level_db(quiet_room) + 70) < 0.5 and room_level_db(quiet_room) > MUTED_DB
    assert room_level_db(np.zeros(SR, np.float32)) < MUTED_DB
    one_bit = np.full(SR, 1 / 32768, np.float32)  # a 16-bit microphone's smallest step, all the time: -90.3 dBFS
    assert room_level_db(one_bit) < MUTED_DB < room_level_db(4 * one_bit)


def test_a_take_is_written_whole_or_not_at_all(tmp_path):
    write_wav(tmp_path / "take-001.wav", word())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take-001.wav"]  # no .part left
    assert np.allclose(soundfile.read(tmp_path / "take-001.wav", dtype="float32")[0], word(), atol=1 / 32768)
    (tmp_path / "gone").write_text("a file where the folder was")
    with pytest.raises(OSError):
        write_wav(tmp_path / "gone" / "take-002.wav", word())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gone", "take-001.wav"]


class Prompts:
    """streamd record as a subprocess; answers each prompt with the next of the answers (audio, or None: silence)."""

    def __init__(self, vmic, tmp_path: Path, *args: str):
        self.vmic, self.dir = vmic, tmp_path
        self.proc = subprocess.Popen([*STREAMD, "record", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, **vmic.env})
        self.lines: list[str] = []

    def answer(self, answers: list, timeout_s: float = 60.0) -> tuple[int, str]:
        deadline = time.monotonic() + timeout_s
        wav = self.dir / "word.wav"
        soundfile.write(wav, np.concatenate([np.zeros(SR // 10, np.float32), word()]), SR, subtype="PCM_16")
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if " now" in line and answers and answers.pop(0) is not None:
                self.vmic.play(wav)
            assert time.monotonic() < deadline, self.lines
        return self.proc.wait(timeout=30), self.proc.stderr.read()


def rows(folder: Path) -> list[dict]:
    with open(folder / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_record_keeps_each_word_said_asks_again_after_silence_and_writes_what_training_reads(vmic, tmp_path):
    out = tmp_path / "mine"
    prompts = Prompts(vmic, tmp_path, "computer", "--out", str(out), "--count", "2", "--seconds", "2", "--pause-s",
                      "0.2", "--speaker", "me")
    code, err = prompts.answer(["word", None, "word"])
    assert code == 0, (prompts.lines, err)
    assert sum(" now" in line for line in prompts.lines) == 3
    # before the first take, the room: the virtual microphone's null sink carries exact zeros, as a muted one would
    first = next(i for i, line in enumerate(prompts.lines) if " now" in line)
    assert any(line.startswith("  the room: ") and "digital silence: is the microphone muted" in line
               for line in prompts.lines[:first]), prompts.lines
    assert any("again: nothing louder than the room" in line for line in prompts.lines)
    kept = rows(out)
    assert [(r["path"], r["labels"], r["speaker"]) for r in kept] == [
        ("kws/computer/me-001.wav", "computer", "me"), ("kws/computer/me-002.wav", "computer", "me")]
    for row in kept:
        audio, rate = soundfile.read(out / row["path"], dtype="float32")
        assert rate == SR and abs(len(audio) / SR - float(row["duration_s"])) < 1e-3
        # the word, with about a margin each side: the made-up word's loud part (~0.5 s) plus 2 x 0.25 s
        assert 0.7 < len(audio) / SR < 1.3
        c = np.correlate(audio, word(), "valid")
        assert c.max() / (np.linalg.norm(word()) * np.linalg.norm(audio)) > 0.9  # what was played, not noise
    assert not list(out.rglob(".*.part"))

    from export.train import read_recordings  # the folder is what a recipe's recordings: take

    clips = read_recordings(out / "manifest.csv")
    assert [c.label for c in clips] == ["computer", "computer"] and {c.speaker for c in clips} == {"me"}


def test_record_stops_after_failed_tries_keeping_what_it_kept(vmic, tmp_path):
    out = tmp_path / "mine"
    prompts = Prompts(vmic, tmp_path, "hey kitchen", "--out", str(out), "--count", "3", "--seconds", "2",
                      "--pause-s", "0.1")
    code, err = prompts.answer(["word", None, None, None])
    assert code == 1 and "3 tries in a row failed (nothing louder than the room" in err and "kept 1 of 3" in err
    assert [(r["path"], r["labels"]) for r in rows(out)] == [("kws/hey_kitchen/take-001.wav", "hey kitchen")]


def test_record_a_background_writes_one_long_take_split_in_time_by_training(vmic, tmp_path):
    out = tmp_path / "mine"
    noise = (0.05 * np.random.default_rng(1).standard_normal(4 * SR)).astype(np.float32)
    soundfile.write(tmp_path / "room.wav", noise, SR, subtype="PCM_16")
    proc = subprocess.Popen([*STREAMD, "record", "television", "--kind", "background", "--out", str(out),
                             "--seconds", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **vmic.env})
    player = None
    for line in proc.stdout:
        if line.startswith("recording the room"):
            player = vmic.play(tmp_path / "room.wav", wait=False)
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    player.wait(timeout=30)
    [row] = rows(out)
    assert row["path"] == "noise/television-001.wav" and row["labels"] == "noise;television"
    audio, _ = soundfile.read(out / row["path"], dtype="float32")
    assert len(audio) == 3 * SR and float(row["duration_s"]) == 3.0
    assert np.sqrt(np.mean(audio[SR:] ** 2)) > 0.02  # the room was heard

    from export.data.splits import is_time_split
    from export.train import read_recordings

    assert all(is_time_split(c) for c in read_recordings(out / "manifest.csv"))


def test_record_refuses_a_label_that_would_break_the_manifest_and_a_folder_it_cannot_write(tmp_path):
    done = subprocess.run([*STREAMD, "record", "a,b", "--out", str(tmp_path / "x")], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2 and "label: got 'a,b'" in done.stderr and not (tmp_path / "x").exists()
    (tmp_path / "file").write_text("not a folder")
    done = subprocess.run([*STREAMD, "record", "yes", "--out", str(tmp_path / "file" / "x")], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 1 and done.stderr.startswith(f"streamd: --out: cannot write to {tmp_path / 'file' / 'x'}")


def test_record_without_the_microphone_asked_for_says_which_inputs_there_are(vmic, tmp_path):
    done = subprocess.run([*STREAMD, "record", "yes", "--out", str(tmp_path / "x"), "--device", "no such mic"],
                          capture_output=True, text=True, timeout=120, check=False, env={**os.environ, **vmic.env})
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1 and last.startswith("streamd: record: cannot open input device 'no such mic'"), last
    assert "no input device matches 'no such mic' (inputs: " in last and "choose one with --device" in last
    assert not list((tmp_path / "x").rglob("*.wav"))


def test_a_take_the_microphone_vanished_in_is_asked_again_once_it_is_back(vmic, tmp_path):
    out = tmp_path / "mine"
    wav = tmp_path / "word.wav"
    soundfile.write(wav, np.concatenate([np.zeros(SR // 10, np.float32), word()]), SR, subtype="PCM_16")
    proc = subprocess.Popen([*STREAMD, "record", "computer", "--out", str(out), "--count", "1", "--seconds", "3",
                             "--pause-s", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **vmic.env})
    lines, prompts = [], 0
    for line in proc.stdout:
        lines.append(line.rstrip())
        if " now" in line:
            prompts += 1
            if prompts == 1:
                vmic.remove_device()  # mid-take
            else:
                vmic.play(wav)
        elif line.startswith("microphone lost"):
            vmic.restore_device()
    assert proc.wait(timeout=60) == 0, (lines, proc.stderr.read())
    assert prompts == 2 and any(line.startswith("microphone back") for line in lines), lines
    assert [r["path"] for r in rows(out)] == ["kws/computer/take-001.wav"]


def test_record_from_a_folder_of_detection_clips_keeps_each_whole_as_what_it_was(tmp_path):
    """Detection clips listened to: kept as a word under another label they train as negatives, laid end to end
    as a background they are a recording with no keyword; silent files are left out, other rates resampled."""
    import json

    from export.data.splits import is_time_split
    from export.train import clip_role, read_recordings

    clips = tmp_path / "clips"
    clips.mkdir()
    for i, keyword in enumerate(["stop", "go"]):
        soundfile.write(clips / f"20261207-1200{i}0-{i}-{keyword}.wav", take(0.5, word()), SR, subtype="PCM_16")
        (clips / f"20261207-1200{i}0-{i}-{keyword}.json").write_text(json.dumps({"type": "keyword", "keyword": keyword}))
    soundfile.write(clips / "silent.wav", np.zeros(SR, np.float32), SR)
    stereo = np.stack([take(0.5, word(), total_s=1.0)] * 2, axis=1)
    soundfile.write(clips / "phone.wav", np.repeat(stereo, 3, axis=0), 3 * SR)  # 48 kHz, two channels
    (clips / ".half.wav.part").write_bytes(b"")  # a clip being written: not read
    out = tmp_path / "mine"
    done = subprocess.run([*STREAMD, "record", "tv talk", "--from", str(clips), "--out", str(out)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "left out silent.wav: silent" in done.stdout and "they fired stop 1, go 1" in done.stdout
    kept = rows(out)
    assert [(r["path"], r["labels"]) for r in kept] == [(f"kws/tv_talk/take-00{i}.wav", "tv talk") for i in (1, 2, 3)]
    lengths = [len(soundfile.read(out / r["path"])[0]) for r in kept]
    assert lengths == [2 * SR, 2 * SR, SR]  # whole, the 48 kHz file at 16 kHz
    recorded = read_recordings(out / "manifest.csv")
    assert [clip_role(c) for c in recorded] == [("unknown", "tv talk")] * 3  # negatives: no keyword was said

    done = subprocess.run([*STREAMD, "record", "knocks", "--kind", "background", "--from", str(clips), "--out",
                           str(out)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    row = rows(out)[-1]
    assert (row["path"], row["labels"]) == ("noise/knocks-001.wav", "noise;knocks")
    assert len(soundfile.read(out / row["path"])[0]) == 5 * SR + 2 * SR // 4  # three files, two gaps of 0.25 s
    assert is_time_split(read_recordings(out / "manifest.csv")[-1])

    (tmp_path / "empty").mkdir()
    done = subprocess.run([*STREAMD, "record", "x", "--from", str(tmp_path / "empty"), "--out", str(out)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and "--from: no .wav/.flac/.ogg files in" in done.stderr
    done = subprocess.run([*STREAMD, "record", "x", "--from", str(tmp_path / "nowhere"), "--out", str(out)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and f"--from: {tmp_path / 'nowhere'} is not a folder" in done.stderr
