"""Synthetic running speech from espeak-ng: talk that says no keyword, for false accepts.

The real speech here (`speech/`) is 619 short orders for drinks, so the wake word's false accepts
per hour on speech rest on 0.2 h (the validation part) of one topic. This module writes paragraphs of
household talk, made from sentence templates and a vocabulary that never holds a keyword but is
rich in words that sound like one ("commuter", "computing", "company", "stopped", "knows", "cup",
"often", "downtown"), read by the espeak-ng voices of `synth_speech` at random speeds and pitches
(`--engines flite festival`: by those synthesisers' voices instead, warped and pitch-shifted as
`synth_speech` does, so that near-misses can be heard in voices a model never trained on).

    python -m export.data.synth_talk --out DIR --count 300 --seed 1000 [--engines espeak|flite|festival ...]

writes DIR/speech/talk_<seed>_<i>.flac (labels `speech;kind=talk`, speaker = the voice) and
DIR/manifest.csv. A recipe lists the manifest under `synthetic:` and the trainer uses the clips as
it uses `speech/`: non-keyword speech for backgrounds and negative scenes, marked `speech`. The
folder is laid out like ../shared/data, so `python -m export.evaluate MODEL --data DIR --split all
--tasks wakeword` counts false accepts per hour on the talk alone (docs/evaluation.md, "Talk").

It is not real speech (one synthesiser, no conversation, no room), so it measures how a model reacts
to running speech full of near-misses; it does not replace hours of recorded speech.
"""

from __future__ import annotations

import argparse
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from export.data.audio import cache_root
from export.data.manifest import Clip, write_manifest
from export.data.synth_speech import (ENGINES, SAMPLE_RATE_HZ, Utterance, draw_warp, engines_dir, render, trim,
                                      voices, with_progress)
from export.labels import KEYWORDS

SENTENCES = (2, 5)  # per clip
SPEED_WPM = (130, 200)
PITCH = (20, 80)
RMS_DB = (-35.0, -18.0)  # written level of a clip
PEAK = 0.99

# Slots of the templates below. No entry may contain a keyword as a word (checked by keyword_free).
WORDS = {
    "who": ("my sister", "the neighbour", "your brother", "Anna", "the children", "our landlord", "Peter",
            "the commuter", "the company", "my mother", "the postman", "Daniel", "the composer", "grandma",
            "the competitor", "the new teacher", "everybody", "the plumber", "Tom", "the doctor"),
    "did": ("stopped by", "called", "wrote", "computed the total", "finished the report", "bought a cup",
            "came home late", "forgot the keys", "cooked dinner", "cleaned the kitchen", "missed the bus",
            "fixed the heater", "booked a table", "lost the receipt", "painted the fence", "walked the dog",
            "knocked twice", "moved the couch", "started the laundry", "picked the apples"),
    "thing": ("the kettle", "a cup of tea", "the laptop", "the dishwasher", "a cucumber", "the compass",
              "the compost", "a tomato", "the stock pot", "the radio", "some coffee", "the window", "the goat",
              "the yellow jacket", "the shopping list", "the computation", "the lamp", "the gold ring",
              "the supper", "a bottle of water", "the calendar", "the toaster", "the blanket", "the sofa"),
    "place": ("in the kitchen", "at the office", "downtown", "near the station", "behind the house",
              "at the shop", "in the garden", "at the top of the hill", "across the street", "in the attic",
              "at the bakery", "by the window", "in the car", "at school", "in the hallway", "at the market"),
    "when": ("yesterday", "tomorrow", "this morning", "last week", "tonight", "every Sunday", "at noon",
             "later", "soon", "after lunch", "before dinner", "at seven", "in a minute", "twice a week",
             "often", "now and then", "at the weekend", "since Monday"),
    "feel": ("happy", "tired", "busy", "worried", "hungry", "sure", "surprised", "sorry", "ready", "late",
             "glad", "annoyed", "curious", "calm", "confused", "excited"),
    "do": ("compute the bill", "commute by train", "fix the sink", "make some soup", "water the plants",
           "tidy the room", "call the bank", "read the letter", "feed the cat", "close the door",
           "take out the rubbish", "buy more milk", "wash the car", "find the remote", "charge the phone",
           "pay the rent", "write a note", "bake a cake", "visit the dentist", "check the mail"),
    "say": ("I know", "not yet", "of course", "maybe", "I suppose so", "sure thing", "that sounds good",
            "nowhere", "nobody knows", "I don't think so", "absolutely", "probably", "why not",
            "it depends", "fair enough", "I guess"),
}
TEMPLATES = (
    "{who} {did} {when}.",
    "Did {who} say they {did}?",
    "I put {thing} {place}.",
    "We have to {do} {when}.",
    "{say}, {who} {did} {place}.",
    "Could you {do} before {who} gets here?",
    "I was {feel} because {who} {did}.",
    "Where is {thing}? I thought it was {place}.",
    "{who} is {feel} about {thing}.",
    "{say}. Let me {do} first.",
    "Have you seen {thing} {place}?",
    "{when} we could {do} and then {do}.",
    "{who} said {thing} was {place} {when}.",
    "Honestly, {say}. {who} {did}.",
    "The computing class starts {when}, and {who} is {feel}.",
    "I'm going to {do} {when}, {say}.",
    "Tell {who} that {thing} is {place}.",
    "Whatever happens, {who} {did} {when}.",
)


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def keyword_free(text: str) -> bool:
    """No keyword is one of the text's words (a keyword inside a longer word, as in 'downtown', is allowed)."""
    return not set(words_of(text)) & set(KEYWORDS)


def paragraph(rng: np.random.Generator) -> str:
    """A few sentences from TEMPLATES; every slot drawn anew."""
    out = []
    for _ in range(int(rng.integers(SENTENCES[0], SENTENCES[1] + 1))):
        template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
        sentence = re.sub(r"\{(\w+)\}", lambda m: str(rng.choice(WORDS[m.group(1)])), template)
        out.append(sentence[0].upper() + sentence[1:])
    return " ".join(out)


def make_talk(rng: np.random.Generator, engines: tuple[str, ...] = ("espeak",)) -> tuple[np.ndarray, str, str]:
    """(audio, speaker, text) of one clip: a paragraph read by one voice, trimmed, at a random level."""
    text = paragraph(rng)
    all_voices = voices(engines)
    voice = all_voices[int(rng.integers(len(all_voices)))]
    speed_wpm, pitch = int(rng.integers(*SPEED_WPM, endpoint=True)), int(rng.integers(*PITCH, endpoint=True))
    level_db = rng.uniform(*RMS_DB)
    warp = draw_warp(voice, rng)  # last
    utt = Utterance(word=text, voice=voice, speed_wpm=speed_wpm, pitch=pitch, warp=warp)
    audio = trim(render(utt, text))
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) or 1e-9
    audio = audio * (10 ** (level_db / 20) / rms)
    peak = float(np.abs(audio).max())
    if peak > PEAK:
        audio = audio * (PEAK / peak)
    return audio.astype(np.float32), utt.speaker, text


def default_out_dir(seed: int = 0, engines: tuple[str, ...] = ("espeak",)) -> Path:
    return engines_dir(cache_root() / "synth_talk", seed, engines)


def write_talk(out_dir: Path, seed: int, index: int, engines: tuple[str, ...] = ("espeak",)) -> Clip:
    """Clip index of seed; depends only on (seed, index, engines)."""
    audio, voice, _ = make_talk(np.random.default_rng([seed, index]), engines)
    path = out_dir / "speech" / f"talk_{seed}_{index:05d}.flac"
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, SAMPLE_RATE_HZ, subtype="PCM_16")
    return Clip(path=path, labels=("speech", "kind=talk"), speaker=voice, duration_s=len(audio) / SAMPLE_RATE_HZ)


def generate(out_dir: str | Path, count: int, seed: int = 0, jobs: int = 2,
             engines: tuple[str, ...] = ("espeak",), progress: bool = False) -> list[Clip]:
    """count clips under out_dir/speech/ plus out_dir/manifest.csv. progress: a bar on stderr."""
    out_dir = Path(out_dir).resolve()
    engines = tuple(engines)
    voices(engines)  # fails here, once, if an engine is missing
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:  # the synthesisers run as subprocesses
        made = pool.map(lambda i: write_talk(out_dir, seed, i, engines), range(count))
        clips = list(with_progress(made, count, "clip") if progress else made)
    write_manifest(clips, out_dir / "manifest.csv")
    return clips


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="output folder (default: $STREAMD_CACHE/synth_talk/seed<S>)")
    p.add_argument("--count", type=int, default=200, help="clips (a paragraph each, about 10 s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2, help="parallel synthesiser processes")
    p.add_argument("--engines", nargs="+", default=["espeak"], choices=ENGINES,
                   help="synthesisers whose voices read the talk (default: espeak)")
    args = p.parse_args(argv)
    engines = tuple(dict.fromkeys(args.engines))
    out = args.out or default_out_dir(args.seed, engines)
    t0 = time.perf_counter()
    clips = generate(out, args.count, args.seed, args.jobs, engines, progress=True)
    minutes = sum(c.duration_s for c in clips) / 60
    print(f"{len(clips)} clips, {minutes:.1f} min of talk, {len({c.speaker for c in clips})} voices -> "
          f"{out}/manifest.csv ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
