"""`streamd record`: your own clips of a word or a sound, from the microphone, laid out as training and the
evaluation read them: FOLDER/kws/<word>/, FOLDER/tags/<sound>/ or FOLDER/noise/<name>.wav, each file a row of
FOLDER/manifest.csv, so that a recipe names FOLDER under `recordings:` (docs/data.md "Adding a keyword").

Each take starts at its prompt and lasts `seconds`. A word or sound is kept cut to where it is loud, with a margin;
a take in which nothing rose above the room, or that clipped, or (a word) that ran into the take's edge, is asked
again, and several failed tries in a row end the session. Every kept take is on disk, and its manifest row
written, before the next prompt: an interrupted session keeps them all. A background (`noise`) is one long take
written as it arrives; Ctrl-C ends it early and keeps what was heard.

`--from FOLDER` takes the WAV files of a folder instead of the microphone, each kept whole: the service's
detection clips (`clips.enabled`) once you have listened to them, so that what fired a keyword by mistake trains
as what it was. Kept as a word under another label ("tv talk"), a clip is a negative word (speech, no keyword);
under the keyword that should have fired, a positive; as a background, the clips laid end to end are a recording
with no keyword and no speech in it (a knock, a kettle).
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE_HZ = 16000  # what training and the models read
FRAME_S = 0.01  # level frames for trimming
MIN_RISE_DB = 15.0  # a take counts only where its loudest frame stands this far above its quietest tenth
ACTIVE_BELOW_PEAK_DB = 35.0  # a frame is part of the word or sound within this of the loudest frame...
ACTIVE_ABOVE_FLOOR_DB = 10.0  # ...and this far above the room
CLIPPED = 0.999  # |sample| at or above this: the input clipped
MAX_TRIES = 3  # failed tries in a row before the session stops
OPEN_TIMEOUT_S = 15.0  # how long to wait for the microphone to open
MARGIN_S = {"word": 0.25, "sound": 0.5}  # kept before and after the loud part
MANIFEST_COLUMNS = ("path", "labels", "speaker", "duration_s")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
GAP_S = 0.25  # silence between files laid end to end as one background
SILENT = 1e-4  # a file whose every sample is below this (-80 dBFS) is left out
ROOM_S = 1.0  # the room heard before the first take, to say how loud it is
MUTED_DB = -90.0  # a room quieter than this is digital silence: no real microphone is that quiet
FORBIDDEN = set(",;=\n\r\"/\\")  # separators of manifest.csv and of paths


class RecordError(Exception):
    """Exit 1 with this one line; what was kept stays."""


@dataclass(frozen=True)
class Layout:
    """Where a label's takes go and how the manifest labels them."""

    folder: Path  # relative to the recordings folder
    labels: str

    @staticmethod
    def of(kind: str, label: str) -> Layout:
        if not label.strip() or FORBIDDEN & set(label):
            raise ValueError(f"label: got {label!r}, expected a name without any of , ; = / \\ \" or a line break")
        name = label.strip().replace(" ", "_")
        if kind == "word":
            return Layout(Path("kws") / name, label.strip())
        if kind == "sound":
            return Layout(Path("tags") / name, label.strip())
        if kind == "background":
            return Layout(Path("noise"), f"noise;{name}")
        raise ValueError(f"kind: got {kind!r}, expected word, sound or background")

    @property
    def name(self) -> str:
        """The label as a file name ("hey_kitchen", "television")."""
        return self.labels.split(";")[-1].replace(" ", "_")

    def next_path(self, root: Path, stem: str, later: int = 0) -> Path:
        """root/<folder>/<stem>-NNN.wav with the next free number (next_name); the folder made where missing."""
        (root / self.folder).mkdir(parents=True, exist_ok=True)
        return next_name(root / self.folder, stem, later)


def check_speaker(speaker: str) -> None:
    """ValueError for a --speaker the manifest cannot hold."""
    if speaker and FORBIDDEN & set(speaker):
        raise ValueError(f"--speaker: got {speaker!r}, expected a name without , ; = / \\ \" or a line break")


def trim(audio: np.ndarray, kind: str, sample_rate_hz: int = SAMPLE_RATE_HZ) -> tuple[int, int] | str:
    """(start, end) samples of a take to keep: its loud part with MARGIN_S around it; or why to take it again."""
    if len(audio) and float(np.max(np.abs(audio))) >= CLIPPED:
        return "the input clipped: move back a little or turn the microphone's gain down"
    frame = round(FRAME_S * sample_rate_hz)
    n_frames = len(audio) // frame
    if n_frames < 10:
        return "the take is too short"
    frames = audio[:n_frames * frame].reshape(n_frames, frame)
    level_db = 10 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)
    floor_db, peak_db = float(np.percentile(level_db, 10)), float(level_db.max())
    if peak_db - floor_db < MIN_RISE_DB:
        return "nothing louder than the room: come closer or turn the microphone's gain up"
    active = np.flatnonzero(level_db >= max(peak_db - ACTIVE_BELOW_PEAK_DB, floor_db + ACTIVE_ABOVE_FLOOR_DB))
    first, last = int(active[0]), int(active[-1])
    if kind == "word" and first == 0:
        return "it had begun before the take: speak after the prompt"
    if kind == "word" and last == n_frames - 1:
        return "it ran past the end of the take: speak right after the prompt, or give --seconds more"
    margin = round(MARGIN_S[kind] * sample_rate_hz)
    return max(0, first * frame - margin), min(len(audio), (last + 1) * frame + margin)


class Manifest:
    """FOLDER/manifest.csv, created with MANIFEST_COLUMNS where missing; rows appended one at a time."""

    def __init__(self, root: Path):
        self.path = root / "manifest.csv"
        if self.path.exists():
            with open(self.path, newline="") as f:
                self.columns = tuple(csv.DictReader(f).fieldnames or ())
            if "path" not in self.columns or "labels" not in self.columns:
                raise RecordError(f"{self.path}: not a manifest (its header has no path and labels columns)")
        else:
            self.columns = MANIFEST_COLUMNS
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.columns)

    def add(self, row: dict) -> None:
        append_row(self.path, [row.get(c, "") for c in self.columns])

    def add_file(self, path: Path, labels: str, speaker: str, duration_s: float) -> None:
        """The row of a file under the manifest's folder."""
        self.add({"path": path.relative_to(self.path.parent).as_posix(), "labels": labels, "speaker": speaker,
                  "duration_s": f"{duration_s:.6f}"})

    def keep(self, path: Path, audio: np.ndarray, labels: str, speaker: str) -> None:
        """A take on disk (whole, write_wav) and then its row; OSError where either cannot be written."""
        write_wav(path, audio)
        self.add_file(path, labels, speaker, len(audio) / SAMPLE_RATE_HZ)


def append_row(path: Path, values: list) -> None:
    """One CSV row appended and on disk before this returns: what was kept is never lost to a crash after it."""
    with open(path, "a", newline="") as f:
        csv.writer(f).writerow(values)
        f.flush()
        os.fsync(f.fileno())


def next_name(folder: Path, stem: str, later: int = 0, suffix: str = ".wav") -> Path:
    """folder/<stem>-<n>.wav with n one past the highest already there (plus later), so a second session adds to
    the first."""
    taken = [int(p.stem[len(stem) + 1:]) for p in folder.glob(f"{stem}-*{suffix}") if p.stem[len(stem) + 1:].isdigit()]
    return folder / f"{stem}-{max(taken, default=0) + 1 + later:03d}{suffix}"


def write_wav(path: Path, audio: np.ndarray) -> None:
    """Written under a hidden name and renamed: the folder never holds half a take."""
    part = path.with_name(f".{path.name}.part")
    try:
        soundfile.write(part, audio, SAMPLE_RATE_HZ, subtype="PCM_16", format="WAV")
        os.replace(part, path)
    except (OSError, RuntimeError) as err:  # soundfile's errors are RuntimeErrors
        part.unlink(missing_ok=True)
        raise OSError(str(err)) from None


class Microphone:
    """The service's capture (streamd.capture.MicSource) at the models' rate: device faults are its notes."""

    def __init__(self, device: str | int | None):
        from streamd.capture import MicSource

        self.source = MicSource("record", SAMPLE_RATE_HZ, device=device, ring_seconds=30.0)
        self.lost = False

    def __enter__(self) -> Microphone:
        self.source.start()
        deadline = time.monotonic() + OPEN_TIMEOUT_S
        while not self.source.connected:
            if time.monotonic() > deadline:
                self.source.stop()
                notes = [n.message for n in self.source.drain_notes()]
                raise RecordError(f"{notes[-1] if notes else f'no microphone opened within {OPEN_TIMEOUT_S:g} s'} "
                                  "(`streamd devices` lists the inputs; choose one with --device)")
            time.sleep(0.05)
        self.source.drain_notes()
        return self

    def __exit__(self, *exc) -> None:
        self.source.stop()

    @property
    def now(self) -> int:
        return self.source.ring.end_index

    def chunks(self, start: int, n_samples: int):
        """The n_samples from sample index start, in pieces as they arrive; stops early (self.lost) if the device
        went away meanwhile, since the take would have a hole."""
        ring, end = self.source.ring, start + n_samples
        while start < end:
            self.source.wait_for_data(0.25)
            for note in self.source.drain_notes():
                if note.kind == "device_lost":
                    print(f"microphone lost: {note.message}; waiting for it", flush=True)
                    self.lost = True
            if self.lost:
                return
            if ring.oldest_index > start:
                raise RecordError("the audio fell behind the ring (the machine is too busy)")
            n = min(ring.end_index, end) - start
            if n > 0:
                yield ring.read(start, n)
                start += n

    def take(self, seconds: float) -> np.ndarray | None:
        """seconds of audio from now; None if the device was lost meanwhile (wait with reopened())."""
        pieces = list(self.chunks(self.now, round(seconds * SAMPLE_RATE_HZ)))
        return None if self.lost else np.concatenate(pieces)

    def reopened(self) -> None:
        while self.lost:
            self.source.wait_for_data(0.25)
            for note in self.source.drain_notes():
                if note.kind in ("device_reopened", "device_opened"):
                    print(f"microphone back: {note.message}", flush=True)
                    self.lost = False


def room_level_db(audio: np.ndarray) -> float:
    """The level of a stretch of the room: mean power in dB re full scale, down to -120 dB (streamd.gate.level_db
    stops at -100, too near the -90 dB that tells digital silence from a microphone's noise floor)."""
    return float(10 * np.log10(np.mean(np.square(audio, dtype=np.float64)) + 1e-12))


def hear_the_room(mic: Microphone) -> None:
    """Say how loud the room is before the first take: a muted or dead microphone (digital silence) shows at once,
    not after three takes asked again."""
    print(f"listening to the room for {ROOM_S:g} s: stay quiet", flush=True)
    room = mic.take(ROOM_S)
    if room is None:  # lost meanwhile: the first take waits for it
        return
    room_db = room_level_db(room)
    if room_db < MUTED_DB:
        print(f"  the room: {room_db:.0f} dBFS, digital silence: is the microphone muted, or the wrong one "
              "(--device; `streamd devices`)?", flush=True)
    else:
        print(f"  the room: {room_db:.0f} dBFS; each take must rise {MIN_RISE_DB:g} dB above its quiet part",
              flush=True)


def record_takes(mic: Microphone, manifest: Manifest, root: Path, kind: str, label: str, count: int,
                 seconds: float, pause_s: float, speaker: str) -> int:
    """count kept takes of a word or sound; returns how many were kept (fewer after Ctrl-C)."""
    layout = Layout.of(kind, label)
    say = f'say "{label}"' if kind == "word" else f"make the sound ({label})"
    kept, failed = 0, 0
    try:
        hear_the_room(mic)
        while kept < count:
            time.sleep(pause_s)
            print(f"take {kept + 1} of {count}: {say} now", flush=True)
            audio = mic.take(seconds)
            if audio is None:
                mic.reopened()
                continue
            cut = trim(audio, kind)
            if isinstance(cut, str):
                failed += 1
                print(f"  again: {cut}", flush=True)
                if failed >= MAX_TRIES:
                    raise RecordError(f"{failed} tries in a row failed ({cut}); kept {kept} of {count}")
                continue
            failed = 0
            path = layout.next_path(root, speaker or "take")
            clip = audio[cut[0]:cut[1]]
            try:
                manifest.keep(path, clip, layout.labels, speaker)
            except OSError as err:  # a full disk, a folder gone: the takes before this one stay
                raise RecordError(f"cannot write {path}: {err.strerror or err}; kept {kept} of {count}") from None
            kept += 1
            print(f"  kept {path.relative_to(root)} ({len(clip) / SAMPLE_RATE_HZ:.2f} s, peak "
                  f"{20 * np.log10(np.max(np.abs(clip)) + 1e-12):.0f} dBFS)", flush=True)
    except KeyboardInterrupt:
        print(f"stopped: kept {kept} of {count}", flush=True)
    return kept


def record_background(mic: Microphone, manifest: Manifest, root: Path, label: str, seconds: float) -> float:
    """One long take of the room, written as it arrives; Ctrl-C ends it early and keeps it. Returns its seconds."""
    layout = Layout.of("background", label)
    path = layout.next_path(root, layout.name)
    part = path.with_name(f".{path.name}.part")
    n_written, clipped, next_report_s = 0, 0, 0.0
    print(f"recording the room for {seconds:g} s (Ctrl-C ends it early and keeps it)", flush=True)
    try:
        with soundfile.SoundFile(part, "w", SAMPLE_RATE_HZ, 1, subtype="PCM_16", format="WAV") as out:
            try:
                for piece in mic.chunks(mic.now, round(seconds * SAMPLE_RATE_HZ)):
                    out.write(piece)
                    n_written += len(piece)
                    clipped += int(np.sum(np.abs(piece) >= CLIPPED))
                    if n_written / SAMPLE_RATE_HZ >= next_report_s:
                        print(f"  {n_written / SAMPLE_RATE_HZ:.0f} of {seconds:g} s", flush=True)
                        next_report_s += 10.0
            except KeyboardInterrupt:
                print("  stopped", flush=True)
            except (OSError, RuntimeError) as err:  # a full disk: keep what was written (soundfile: RuntimeErrors)
                print(f"  stopped: cannot write more: {err}", flush=True)
    except RecordError:
        part.unlink(missing_ok=True)
        raise
    except (OSError, RuntimeError) as err:  # the file could not be opened or finished
        part.unlink(missing_ok=True)
        raise RecordError(f"cannot write {path}: {err}") from None
    if n_written == 0:
        part.unlink(missing_ok=True)
        raise RecordError("nothing was recorded")
    os.replace(part, path)
    duration_s = n_written / SAMPLE_RATE_HZ
    manifest.add_file(path, layout.labels, "", duration_s)
    print(f"  kept {path.relative_to(root)} ({duration_s:.1f} s{f', {clipped} samples clipped' if clipped else ''})"
          f"{'; the microphone was lost, so it ends there' if mic.lost else ''}", flush=True)
    return duration_s


def read_audio(path: Path) -> np.ndarray:
    """An audio file as mono at SAMPLE_RATE_HZ (the service's own mix-down and resampler); OSError where it cannot
    be read."""
    from streamd.resample import mix_down, resample

    try:
        audio, rate_hz = soundfile.read(path, dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as err:  # soundfile's errors are RuntimeErrors
        raise OSError(f"cannot read {path}: {err}") from None
    return resample(mix_down(audio), rate_hz, SAMPLE_RATE_HZ)


def read_folder(folder: Path) -> list[tuple[Path, np.ndarray]]:
    """The audio files of a folder (not its subfolders, not hidden ones), by name, as mono at SAMPLE_RATE_HZ."""
    if not folder.is_dir():
        raise RecordError(f"--from: {folder} is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise RecordError(f"--from: no {'/'.join(AUDIO_SUFFIXES)} files in {folder}")
    try:
        return [(path, read_audio(path)) for path in files]
    except OSError as err:
        raise RecordError(f"--from: {err}") from None


def fired(paths: list[Path]) -> str:
    """What the detection clips among paths fired (their .json sidecars), e.g. "stop 25, go 10"; "" for none."""
    import json
    from collections import Counter

    heard = Counter()
    for path in paths:
        try:
            heard[json.loads(path.with_suffix(".json").read_text()).get("keyword", "?")] += 1
        except (OSError, ValueError, AttributeError):
            continue
    return ", ".join(f"{k} {n}" for k, n in heard.most_common())


def end_to_end(clips: list[np.ndarray]) -> np.ndarray:
    """Clips as one background recording, GAP_S of silence between them."""
    gap = np.zeros(round(GAP_S * SAMPLE_RATE_HZ), np.float32)
    return np.concatenate([x for audio in clips for x in (audio, gap)][:-1])


def import_files(folder: Path, manifest: Manifest, root: Path, kind: str, label: str, speaker: str) -> int:
    """--from: each audio file of folder as one take (word, sound), or all of them end to end as one background;
    returns the files kept (silent ones are left out, and said)."""
    layout = Layout.of(kind, label)
    files = read_folder(folder)
    heard = []
    for path, audio in files:
        if len(audio) and float(np.max(np.abs(audio))) > SILENT:
            heard.append((path, audio))
        else:
            print(f"  left out {path.name}: silent", flush=True)
    if not heard:
        raise RecordError(f"--from: every file in {folder} is silent")
    if kind == "background":
        takes = [end_to_end([audio for _, audio in heard])]
        names = [layout.next_path(root, layout.name)]
    else:
        takes = [audio for _, audio in heard]
        names = [layout.next_path(root, speaker or "take", later=i) for i in range(len(takes))]
    try:
        for path, audio in zip(names, takes):
            manifest.keep(path, audio, layout.labels, "" if kind == "background" else speaker)
    except OSError as err:
        raise RecordError(f"cannot write {path}: {err.strerror or err}") from None
    what = fired([p for p, _ in heard])
    where = f"one background, {names[0].relative_to(root)}" if kind == "background" else f"{layout.folder}/"
    print(f"kept {len(heard)} of {len(files)} files of {folder}{f' (they fired {what})' if what else ''} as {where} "
          f"({sum(len(a) for a in takes) / SAMPLE_RATE_HZ:.1f} s), labelled {layout.labels!r}", flush=True)
    return len(heard)


def run(args) -> int:
    """The `streamd record` command (streamd.cli: a ValueError is a bad argument, exit 2; a RecordError, exit 1,
    leaves what was kept). 0 when it stopped as asked: every take, or Ctrl-C."""
    Layout.of(args.kind, args.label)
    check_speaker(args.speaker)
    if args.count < 1 or args.seconds <= 0 or args.pause_s < 0:
        raise ValueError("--count must be 1 or more, --seconds more than 0 and --pause-s 0 or more")
    root = Path(args.out).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
        manifest = Manifest(root)
    except OSError as err:
        raise RecordError(f"--out: cannot write to {root}: {err.strerror or err}") from None
    if args.source:
        import_files(Path(args.source).expanduser(), manifest, root, args.kind, args.label, args.speaker)
    else:
        device = int(args.device) if args.device and args.device.isdigit() else args.device  # as inputs[].device
        with Microphone(device) as mic:
            if args.kind == "background":
                record_background(mic, manifest, root, args.label, args.seconds)
            else:
                record_takes(mic, manifest, root, args.kind, args.label, args.count, args.seconds, args.pause_s,
                             args.speaker)
    print(f"{manifest.path}: name {root} under recordings: in a recipe to train on it "
          '(docs/data.md "Adding a keyword", "Adding a sound")', flush=True)
    return 0
