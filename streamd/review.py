"""`streamd review`: the service's detection clips one at a time, played, answered and kept as what they were.

The service keeps the audio around each keyword event (`clips.enabled`), and each tag event whole (`clips.tags`).
Heard back, a keyword's clip is one of: the keyword it fired (a real recording of it in this house: a positive),
another word that should have fired (it heard "go", it was "no"), someone saying something else (a negative word),
or no one speaking (a knock, a kettle). A tag's clip is the sound it fired (a positive), another tag's, a sound that
is none of them (the kettle it took for a smoke alarm: heard, no tag on), or just the room. Each answer keeps the
clip in a recordings folder laid out as `streamd record` lays it out, so that a recipe's `recordings:` trains on it.
The clips folder is only read: the service may go on writing and pruning it.

What was answered is logged in FOLDER/reviewed.csv, so that the next review starts where this one ended. A word or
sound is on disk, with its manifest row and its log row, before the next clip plays; the clips answered b (no one
spoke, the room alone) are laid end to end as one background when the review ends (also after q, end of input or
Ctrl-C), as `streamd record --kind background --from` lays them.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamd.record import (SAMPLE_RATE_HZ, Layout, Manifest, RecordError, append_row, check_speaker, end_to_end,
                            read_audio)

LOG_COLUMNS = ("clip", "fired", "kind", "label", "kept")  # fired: the keyword or tag of the clip's event
KEYWORD_BEFORE_S = 1.25  # a clip kept as a keyword starts this long before its event: the word, not what came before
SOUND_BEFORE_S = 0.5  # a tag's clip kept as a sound starts this long before the tag's start (as record keeps sounds)
ANSWERS = {"keyword": "y: it was {label} | WORD: it was WORD | n: {speech} | b: no one spoke | enter: again | s: skip "
                      "| q: quit",
           "tag": "y: it was {label} | NAME: it was NAME | n: {sound} (none of the tags) | b: nothing, the room | "
                  "enter: again | s: skip | q: quit"}


@dataclass(frozen=True)
class Clip:
    """A detection clip and the event of its sidecar: a keyword event, or a tag's end (the clip holds the whole tag)."""

    path: Path
    label: str  # the keyword or the tag that fired
    score: float | None  # a keyword's score, a tag's peak score
    time: float | None  # wall clock, seconds since the epoch
    stream: str
    kind: str = "keyword"  # or "tag"
    sound_s: float | None = None  # a tag: from its start to its end (the clip ends post-roll after that)

    @staticmethod
    def read(wav: Path) -> Clip | None:
        """The clip of wav and its .json sidecar; None without a readable keyword or tag_end event beside it."""
        try:
            event = json.loads(wav.with_suffix(".json").read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(event, dict):
            return None
        kind = {"keyword": "keyword", "tag_end": "tag"}.get(event.get("type"))
        label = event.get(kind or "")
        if kind is None or not isinstance(label, str):
            return None
        score, wall = event.get("score" if kind == "keyword" else "peak_score"), event.get("time")
        sound_s = event.get("duration_s") if kind == "tag" else None
        return Clip(wav, label, _number(score), _number(wall), str(event.get("stream", "")), kind, _number(sound_s))

    def header(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time)) if self.time is not None else "?"
        if self.kind == "tag":
            length = f" for {self.sound_s:.1f} s" if self.sound_s is not None else ""
            score = f" peak {self.score:.2f}" if self.score is not None else ""
            return f'{self.path.name}: tag "{self.label}"{length}{score}, stream {self.stream or "?"}, {when}'
        score = f" at {self.score:.2f}" if self.score is not None else ""
        return f'{self.path.name}: "{self.label}"{score}, stream {self.stream or "?"}, {when}'


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def waiting(folder: Path, reviewed: set[str]) -> list[Clip]:
    """The folder's detection clips not yet reviewed, oldest first (their names begin with the time)."""
    wavs = sorted(p for p in folder.glob("*.wav") if not p.name.startswith(".") and p.name not in reviewed)
    return [clip for clip in map(Clip.read, wavs) if clip is not None]


@dataclass(frozen=True)
class Labels:
    """What the answers keep clips as: the labels of n (a keyword's clip: speech; a tag's: a sound) and of b, and
    the keywords and tags the config's models know, which a name typed is (in any case)."""

    speech: str = "other speech"
    sound: str = "other sound"
    background: str = "household"
    keywords: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Answer:
    """What to do with a clip: play it again, skip it, quit, or keep it as kind ("word", "sound", "background") and
    label."""

    action: str  # "again", "skip", "quit" or "keep"
    kind: str = ""
    label: str = ""


def parse(reply: str, clip: Clip, labels: Labels = Labels()) -> Answer:
    """An answer typed to clip. A name typed is a word where it is one of the keywords (in any case), a sound where it
    is one of the tags (in any case, spaces for underscores), else what the clip fired was: a word (a negative) for
    a keyword's clip, a sound for a tag's (one the model has no label for trains as none of its tags). ValueError
    (with the reason) for a label that cannot be one."""
    keywords = labels.keywords | {clip.label} if clip.kind == "keyword" else labels.keywords
    tags = labels.tags | {clip.label} if clip.kind == "tag" else labels.tags
    text = reply.strip()
    fired = Answer("keep", "word" if clip.kind == "keyword" else "sound", clip.label)
    other = Answer("keep", "word", labels.speech) if clip.kind == "keyword" else Answer("keep", "sound", labels.sound)
    short = {"": Answer("again"), "s": Answer("skip"), "q": Answer("quit"), "y": fired, "n": other,
             "b": Answer("keep", "background", labels.background)}
    if text.lower() in short:
        return short[text.lower()]
    Layout.of("word", text)  # a label the manifest can hold
    if text.lower() in keywords:
        return Answer("keep", "word", text.lower())
    if text.lower().replace(" ", "_") in tags:
        return Answer("keep", "sound", text.lower().replace(" ", "_"))
    return Answer("keep", "word" if clip.kind == "keyword" else "sound", text)


class Log:
    """FOLDER/reviewed.csv: a row per clip answered, so that a later review skips it."""

    def __init__(self, root: Path):
        self.path = root / "reviewed.csv"
        if not self.path.exists():
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(LOG_COLUMNS)
        with open(self.path, newline="") as f:
            self.names = {row["clip"] for row in csv.DictReader(f) if row.get("clip")}

    def add(self, clip: Clip, kind: str, label: str, kept: str) -> None:
        append_row(self.path, [clip.path.name, clip.label, kind, label, kept])
        self.names.add(clip.path.name)


class Player:
    """Plays a clip on an output device (PortAudio, as the service captures); once playing fails, says why and
    stays quiet, so that the review goes on from the events alone."""

    def __init__(self, device: str | int | None, enabled: bool = True):
        self.device, self.enabled = device, enabled

    def play(self, audio: np.ndarray) -> None:
        if not self.enabled:
            return
        try:
            import sounddevice as sd  # OSError where the PortAudio library is missing
        except OSError as err:
            self._give_up(err)
            return
        try:
            from streamd.resample import resample

            rate_hz = self._rate_hz(sd)
            sd.play(resample(audio, SAMPLE_RATE_HZ, rate_hz), rate_hz, device=self.device, blocking=True)
        except (sd.PortAudioError, ValueError) as err:  # no output, no sound server, a name that matches nothing
            self._give_up(err)

    def _give_up(self, err: Exception) -> None:
        self.enabled = False
        why = " ".join(str(err).split()) or type(err).__name__
        if "Error querying device -1" in why:  # PortAudio's words for "there is no default output"
            why = "no output device (no sound card, or no sound server to reach)"
        print(f"  cannot play: {why}; answer from the event (--device chooses an output, --no-play stops trying)",
              flush=True)

    def _rate_hz(self, sd) -> int:
        """The clip's own rate where the device takes it, else the device's default rate."""
        try:
            sd.check_output_settings(device=self.device, samplerate=SAMPLE_RATE_HZ, channels=1)
            return SAMPLE_RATE_HZ
        except sd.PortAudioError:
            return int(sd.query_devices(self.device, "output")["default_samplerate"])


def keyword_part(audio: np.ndarray, post_roll_s: float) -> np.ndarray:
    """A clip to keep as a keyword: from KEYWORD_BEFORE_S before its event (post_roll_s before its end) on. A keyword
    fires within ~0.4 s of the word's end and counts only after a pause (docs/service.md "Pause gate"), so this holds
    the word; training takes a clip's loud part as the word, and talk before it would be taken for the word too."""
    event = len(audio) - round(post_roll_s * SAMPLE_RATE_HZ)
    return audio[max(0, event - round(KEYWORD_BEFORE_S * SAMPLE_RATE_HZ)):]


def sound_part(audio: np.ndarray, post_roll_s: float, sound_s: float | None) -> np.ndarray:
    """A tag's clip to keep as a sound: from SOUND_BEFORE_S before the tag's start (sound_s before its end, which is
    post_roll_s before the clip's) on; the pre-roll before it is the room, not the sound. Whole where sound_s is
    unknown."""
    if sound_s is None:
        return audio
    start = len(audio) - round((post_roll_s + sound_s + SOUND_BEFORE_S) * SAMPLE_RATE_HZ)
    return audio[max(0, start):]


def keep(manifest: Manifest, root: Path, audio: np.ndarray, kind: str, label: str, speaker: str) -> Path:
    layout = Layout.of(kind, label)
    path = layout.next_path(root, speaker or "clip")
    manifest.keep(path, audio, layout.labels, speaker)
    return path


def keep_backgrounds(manifest: Manifest, log: Log, root: Path, label: str,
                     clips: list[tuple[Clip, np.ndarray]]) -> None:
    """The clips answered b (no one spoke; the room alone), end to end as one background, then their log rows."""
    if not clips:
        return
    layout = Layout.of("background", label)
    path = layout.next_path(root, layout.name)
    try:
        manifest.keep(path, end_to_end([audio for _, audio in clips]), layout.labels, "")
    except OSError as err:
        raise RecordError(f"cannot write {path}: {err.strerror or err}; the clips answered b are asked again "
                          "next time") from None
    for clip, _ in clips:
        log.add(clip, "background", label, path.relative_to(root).as_posix())
    print(f"kept the {len(clips)} clip{'s' * (len(clips) != 1)} answered b as one background, "
          f"{path.relative_to(root)}", flush=True)


VERDICTS = ("right", "another word", "other speech", "another sound", "other sound", "no one spoke", "the room",
            "skipped")


def verdict(answer: Answer, clip: Clip, labels: Labels) -> str:
    """How the closing line counts an answer kept (one of VERDICTS)."""
    if answer.kind == "background":
        return "no one spoke" if clip.kind == "keyword" else "the room"
    if answer.label == clip.label:
        return "right"
    if answer.kind == "sound":
        return "other sound" if answer.label == labels.sound else "another sound"
    return "other speech" if answer.label == labels.speech else "another word"


def part_to_keep(audio: np.ndarray, answer: Answer, clip: Clip, keywords: frozenset[str],
                 post_roll_s: float) -> np.ndarray:
    """What of a clip is kept for a word or sound answer: a keyword from shortly before the keyword's event, a tag's
    clip from shortly before the tag's start, anything else whole."""
    if clip.kind == "tag":
        return sound_part(audio, post_roll_s, clip.sound_s)
    if answer.kind == "word" and answer.label in keywords | {clip.label}:
        return keyword_part(audio, post_roll_s)
    return audio


def review(clips: list[Clip], manifest: Manifest, log: Log, root: Path, player: Player, labels: Labels, speaker: str,
           post_roll_s: float, ask=input) -> dict[str, int]:
    """Each clip played and answered (ask: a prompt -> the reply; EOFError ends the review); returns how many clips
    were kept per verdict, and skipped. Clips end post_roll_s after their event; what of each is kept:
    part_to_keep."""
    counts = dict.fromkeys(VERDICTS, 0)
    backgrounds: list[tuple[Clip, np.ndarray]] = []
    try:
        for i, clip in enumerate(clips):
            try:
                audio = read_audio(clip.path)
            except OSError as err:  # the service pruned it meanwhile, or it is no audio file
                why = "gone (the service removed it)" if not clip.path.exists() else f"skipped: {err}"
                print(f"{i + 1} of {len(clips)}: {clip.path.name}: {why}", flush=True)
                continue
            print(f"{i + 1} of {len(clips)}: {clip.header()}\n  "
                  f"{ANSWERS[clip.kind].format(label=clip.label, speech=labels.speech, sound=labels.sound)}",
                  flush=True)
            answer = Answer("again")
            while answer.action == "again":
                player.play(audio)
                try:
                    answer = parse(ask("> "), clip, labels)
                except EOFError:
                    answer = Answer("quit")
                except ValueError as err:
                    print(f"  {err}", flush=True)
            if answer.action == "quit":
                break
            if answer.action == "skip":
                counts["skipped"] += 1
                continue
            counts[verdict(answer, clip, labels)] += 1
            if answer.kind == "background":
                backgrounds.append((clip, audio))
                continue
            try:
                kept = part_to_keep(audio, answer, clip, labels.keywords, post_roll_s)
                path = keep(manifest, root, kept, answer.kind, answer.label, speaker)
            except OSError as err:
                raise RecordError(f"cannot write into {root}: {err.strerror or err}") from None
            log.add(clip, answer.kind, answer.label, path.relative_to(root).as_posix())
            print(f"  kept {path.relative_to(root)} as {answer.label!r}", flush=True)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        keep_backgrounds(manifest, log, root, labels.background, backgrounds)
    return counts


def run(args, clips_folder: Path, post_roll_s: float, keywords: set[str], tags: set[str]) -> int:
    """The `streamd review` command over clips_folder, whose clips end post_roll_s after their event; keywords and
    tags: the labels the config's models know (streamd.cli: a ValueError is a bad argument, exit 2; a RecordError,
    exit 1, leaves what was kept)."""
    labels = Labels(args.speech_label, args.sound_label, args.background_label, frozenset(keywords), frozenset(tags))
    Layout.of("word", labels.speech)
    Layout.of("sound", labels.sound)
    Layout.of("background", labels.background)
    check_speaker(args.speaker)
    if not clips_folder.is_dir():
        raise RecordError(f"{clips_folder} is not a folder (the service keeps its clips where clips.enabled; or name "
                          "the folder)")
    root = Path(args.out).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
        manifest, log = Manifest(root), Log(root)
    except OSError as err:
        raise RecordError(f"--out: cannot write to {root}: {err.strerror or err}") from None
    clips = waiting(clips_folder, log.names)
    if not clips:
        print(f"no detection clips to review in {clips_folder} ({len(log.names)} reviewed before)", flush=True)
        return 0
    print(f"{len(clips)} detection clips in {clips_folder} to review; answers go to {root}", flush=True)
    device = int(args.device) if args.device and args.device.isdigit() else args.device
    counts = review(clips, manifest, log, root, Player(device, enabled=not args.no_play), labels, args.speaker,
                    post_roll_s)
    kept = ", ".join(f"{n} {what}" for what, n in counts.items() if what != "skipped" and n) or "nothing"
    print(f"kept {kept} ({counts['skipped']} skipped, asked again next time); {manifest.path}: name {root} under "
          'recordings: in a recipe to train on it (docs/data.md "What fired by mistake")', flush=True)
    return 0
