"""`streamd review`: the service's detection clips one at a time, played, answered and kept as what they were.

The service keeps the audio around each keyword event (`clips.enabled`). Heard back, a clip is one of: the keyword
it fired (a real recording of it in this house: a positive), another word that should have fired (it heard "go",
it was "no"), someone saying something else (a negative word), or no one speaking (a knock, a kettle). Each answer
keeps the clip, whole, in a recordings folder laid out as `streamd record` lays it out, so that a recipe's
`recordings:` trains on it. The clips folder is only read: the service may go on writing and pruning it.

What was answered is logged in FOLDER/reviewed.csv, so that the next review starts where this one ended. A word
is on disk, with its manifest row and its log row, before the next clip plays; the clips answered "no one spoke"
are laid end to end as one background when the review ends (also after q, end of input or Ctrl-C), as `streamd
record --kind background --from` lays them.
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamd.record import SAMPLE_RATE_HZ, Layout, Manifest, RecordError, check_speaker, end_to_end, read_audio

LOG_COLUMNS = ("clip", "keyword", "kind", "label", "kept")
KEYWORD_BEFORE_S = 1.25  # a clip kept as a keyword starts this long before its event: the word, not what came before
ANSWERS = "y: it was {keyword} | WORD: it was WORD | n: {speech} | b: no one spoke | enter: again | s: skip | q: quit"


@dataclass(frozen=True)
class Clip:
    """A detection clip and the keyword event of its sidecar."""

    path: Path
    keyword: str
    score: float | None
    time: float | None  # wall clock, seconds since the epoch
    stream: str

    @staticmethod
    def read(wav: Path) -> Clip | None:
        """The clip of wav and its .json sidecar; None without a readable keyword event beside it."""
        try:
            event = json.loads(wav.with_suffix(".json").read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(event, dict) or not isinstance(event.get("keyword"), str):
            return None
        score, wall = event.get("score"), event.get("time")
        return Clip(wav, event["keyword"], float(score) if isinstance(score, (int, float)) else None,
                    float(wall) if isinstance(wall, (int, float)) else None, str(event.get("stream", "")))

    def header(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time)) if self.time is not None else "?"
        score = f" at {self.score:.2f}" if self.score is not None else ""
        return f'{self.path.name}: "{self.keyword}"{score}, stream {self.stream or "?"}, {when}'


def waiting(folder: Path, reviewed: set[str]) -> list[Clip]:
    """The folder's detection clips not yet reviewed, oldest first (their names begin with the time)."""
    wavs = sorted(p for p in folder.glob("*.wav") if not p.name.startswith(".") and p.name not in reviewed)
    return [clip for clip in map(Clip.read, wavs) if clip is not None]


@dataclass(frozen=True)
class Answer:
    """What to do with a clip: play it again, skip it, quit, or keep it as kind ("word", "background") and label."""

    action: str  # "again", "skip", "quit" or "keep"
    kind: str = ""
    label: str = ""


def parse(reply: str, keyword: str, speech_label: str, background_label: str,
          keywords: set[str] = frozenset()) -> Answer:
    """An answer typed to a clip that fired keyword (a word typed as one of keywords in other case is that keyword);
    ValueError (with the reason) for a label that cannot be one."""
    text = reply.strip()
    short = {"": Answer("again"), "s": Answer("skip"), "q": Answer("quit"),
             "y": Answer("keep", "word", keyword), "n": Answer("keep", "word", speech_label),
             "b": Answer("keep", "background", background_label)}
    if text.lower() in short:
        return short[text.lower()]
    Layout.of("word", text)  # a label the manifest can hold
    return Answer("keep", "word", text.lower() if text.lower() in keywords | {keyword} else text)


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
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([clip.path.name, clip.keyword, kind, label, kept])
            f.flush()
            os.fsync(f.fileno())
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
            rate_hz = self._rate_hz(sd)
            if rate_hz != SAMPLE_RATE_HZ:
                from streamd.resample import StreamResampler

                resampler = StreamResampler(SAMPLE_RATE_HZ, rate_hz)
                audio = np.concatenate([resampler.process(audio), resampler.flush()]).astype(np.float32)
            sd.play(audio, rate_hz, device=self.device, blocking=True)
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


def keep_word(manifest: Manifest, root: Path, audio: np.ndarray, label: str, speaker: str) -> Path:
    layout = Layout.of("word", label)
    path = layout.next_path(root, speaker or "clip")
    manifest.keep(path, audio, layout.labels, speaker)
    return path


def keep_backgrounds(manifest: Manifest, log: Log, root: Path, label: str,
                     clips: list[tuple[Clip, np.ndarray]]) -> None:
    """The clips where no one spoke, end to end as one background, then their log rows."""
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
    print(f"kept the {len(clips)} clip{'s' * (len(clips) != 1)} where no one spoke as one background, "
          f"{path.relative_to(root)}", flush=True)


def verdict(answer: Answer, clip: Clip, speech_label: str) -> str:
    """How the closing line counts an answer kept."""
    if answer.kind == "background":
        return "no one spoke"
    if answer.label == clip.keyword:
        return "right"
    return "other speech" if answer.label == speech_label else "another word"


def review(clips: list[Clip], manifest: Manifest, log: Log, root: Path, player: Player, speech_label: str,
           background_label: str, speaker: str, keywords: set[str], post_roll_s: float, ask=input) -> dict[str, int]:
    """Each clip played and answered (ask: a prompt -> the reply; EOFError ends the review); returns how many clips
    were kept per verdict, and skipped. A clip kept as one of keywords (or as the keyword it fired) is kept from
    KEYWORD_BEFORE_S before its event (clips end post_roll_s after it), anything else whole."""
    counts = dict.fromkeys(("right", "another word", "other speech", "no one spoke", "skipped"), 0)
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
                  f"{ANSWERS.format(keyword=clip.keyword, speech=speech_label)}", flush=True)
            answer = Answer("again")
            while answer.action == "again":
                player.play(audio)
                try:
                    answer = parse(ask("> "), clip.keyword, speech_label, background_label, keywords)
                except EOFError:
                    answer = Answer("quit")
                except ValueError as err:
                    print(f"  {err}", flush=True)
            if answer.action == "quit":
                break
            if answer.action == "skip":
                counts["skipped"] += 1
                continue
            counts[verdict(answer, clip, speech_label)] += 1
            if answer.kind == "background":
                backgrounds.append((clip, audio))
                continue
            if answer.label in keywords | {clip.keyword}:
                audio = keyword_part(audio, post_roll_s)
            try:
                path = keep_word(manifest, root, audio, answer.label, speaker)
            except OSError as err:
                raise RecordError(f"cannot write into {root}: {err.strerror or err}") from None
            log.add(clip, "word", answer.label, path.relative_to(root).as_posix())
            print(f"  kept {path.relative_to(root)} as {answer.label!r}", flush=True)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        keep_backgrounds(manifest, log, root, background_label, backgrounds)
    return counts


def run(args, clips_folder: Path, post_roll_s: float, keywords: set[str]) -> int:
    """The `streamd review` command over clips_folder, whose clips end post_roll_s after their event; keywords: the
    config's (streamd.cli: a ValueError is a bad argument, exit 2; a RecordError, exit 1, leaves what was kept)."""
    Layout.of("word", args.speech_label)
    Layout.of("background", args.background_label)
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
    counts = review(clips, manifest, log, root, Player(device, enabled=not args.no_play), args.speech_label,
                    args.background_label, args.speaker, keywords, post_roll_s)
    kept = ", ".join(f"{n} {what}" for what, n in counts.items() if what != "skipped")
    print(f"kept {kept} ({counts['skipped']} skipped, asked again next time); {manifest.path}: name {root} under "
          'recordings: in a recipe to train on it (docs/data.md "What fired by mistake")', flush=True)
    return 0
