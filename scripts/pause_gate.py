"""The pause gate on the default model: what it costs a command said after speech, and what it saves.

Every setting comes from a service config (default config.yaml: each keyword's threshold, speech gate and
pause gate, its first model at its latency); "without" is the same config with pause_before 0 everywhere,
"speech score only" with pause_drop_db 0 (a pause only where the speech score fell).
Prints three Markdown tables (docs/service.md, "Pause gate"):

1. Keywords after speech: each validation keyword clip of ../shared/data (trimmed to its word) follows
   the last 3 s of a validation coffee order after a silent pause of P seconds, over the kitchen recording
   20 dB below the word (the same stretch of it under the word whatever P); a clip counts as heard when its keyword fires after the speech ended. Beside it,
   the clips missed alone (0.5 s of silence around each, as the evaluation streams them).
2. Keywords said over talk that goes on under them (a television): each clip with 0.5 s of silence
   around it over validation coffee orders 20 and 10 dB below it, from 3 s before; heard as in 1.
3. False accepts of the keywords in negative streams: the validation negatives of ../shared/data and
   each --talk folder (export.data.synth_talk output: running speech full of near-misses), each played
   at --phases phases of the hop grid as export.evaluate plays it (hours and counts of all passes).

    .venv/bin/python scripts/pause_gate.py [--config config.yaml] [--talk ~/.cache/streamd/synth_talk/seed1000 ...]
"""

import dataclasses
from pathlib import Path

import numpy as np

from export.evaluation.after_speech import LEAD_S, PAUSES_S, SpeechBefore
from export.evaluation.clips import in_group, keyword_positives, select_clips
from export.evaluation.config_run import config_keywords, script_parser
from export.evaluation.context import negative_stream_of
from export.evaluation.decisions import ServiceKeywords
from export.evaluation.keywords import PAD_S
from export.evaluation.streaming import Scorer
from export.labels import COMMANDS

TALK_DB = (-20.0, -10.0)  # talk under the keyword clips, against the clip (dB)
TALK_CLIPS = 60  # validation coffee orders end to end: the talk


def print_after_speech(setups: dict[str, ServiceKeywords], kinds: dict[str, list[str]], root: Path, scorer: Scorer) -> None:
    """Table 1: per kind of keyword and setup, clips missed alone and the share heard after each pause."""
    clips, groups = select_clips(root, "val")
    before = SpeechBefore(scorer, clips, groups)
    print("| keywords | pause gate | alone: missed | " + " | ".join(f"after {p:g} s" for p in PAUSES_S) + " |")
    print("|---|---|---|" + "---|" * len(PAUSES_S))
    for kind, names in kinds.items():
        heard = {name: np.zeros(len(PAUSES_S)) for name in setups}
        missed = dict.fromkeys(setups, 0)
        positives = [(keyword, clip) for keyword in names for clip in keyword_positives(clips, groups, keyword)]
        for keyword, clip in positives:
            word, lead = before.word_and_lead(clip)
            alone = scorer.clip(clip, PAD_S)
            for name, gates in setups.items():
                missed[name] += not gates.fired(alone, [keyword])[keyword]
            for j, pause_s in enumerate(PAUSES_S):
                scores = scorer.stream([before.stream(word, lead, pause_s)])
                for name, gates in setups.items():
                    heard[name][j] += any(e > len(lead) for e in gates.fired(scores, [keyword])[keyword])
        for name in setups:
            shares = " | ".join(f"{100 * h / max(1, len(positives)):.1f} %" for h in heard[name])
            print(f"| {kind} ({len(positives)} clips) | {name} | {missed[name]} | {shares} |")


def print_under_talk(setups: dict[str, ServiceKeywords], kinds: dict[str, list[str]], root: Path, scorer: Scorer) -> None:
    """Table 2: keywords said over talk that goes on under them (a television), heard per setup."""
    clips, groups = select_clips(root, "val")
    talk = np.concatenate([scorer.audio(c) for c in clips if in_group(c, groups, "speech")][:TALK_CLIPS])
    rate = scorer.sample_rate_hz
    rng = np.random.default_rng(1)
    print("| keywords | pause gate | " + " | ".join(f"talk {db:g} dB" for db in TALK_DB) + " |")
    print("|---|---|" + "---|" * len(TALK_DB))
    for kind, names in kinds.items():
        positives = [(keyword, clip) for keyword in names for clip in keyword_positives(clips, groups, keyword)]
        heard = {name: np.zeros(len(TALK_DB)) for name in setups}
        for keyword, clip in positives:
            word = scorer.audio(clip)
            lead = round(LEAD_S * rate)
            stream = np.concatenate([np.zeros(lead + round(PAD_S * rate), np.float32), word,
                                     np.zeros(round(PAD_S * rate), np.float32)])
            start = rng.integers(len(talk) - len(stream))
            under = talk[start: start + len(stream)]
            under = under * np.sqrt(np.mean(word ** 2) / np.mean(under ** 2))
            for j, db in enumerate(TALK_DB):
                scores = scorer.stream([(stream + under * 10 ** (db / 20)).astype(np.float32)])
                for name, gates in setups.items():
                    heard[name][j] += any(e > lead for e in gates.fired(scores, [keyword])[keyword])
        for name in setups:
            shares = " | ".join(f"{100 * h / max(1, len(positives)):.1f} %" for h in heard[name])
            print(f"| {kind} ({len(positives)} clips) | {name} | {shares} |")


def print_false_accepts(setups: dict[str, ServiceKeywords], keywords: list[str], streams: dict[str, tuple[Path, str]],
                        model, hop_samples: int, phases: int) -> None:
    """Table 3: per negative stream and setup, the false accepts of each keyword."""
    print("| negative stream | hours | " + " | ".join(f"keyword false accepts, {name}" for name in setups) + " |")
    print("|---|---|" + "---|" * len(setups))
    for title, (data, split) in streams.items():
        negative = negative_stream_of(data, split, model, hop_samples, phases)
        cells = []
        for gates in setups.values():
            counts = {k: len(v) for k, v in gates.fired(negative.scored, keywords).items()}
            cells.append(", ".join(f"{k} {n}" for k, n in counts.items() if n) + f" (all {sum(counts.values())})")
        print(f"| {title} | {negative.hours:.2f} | " + " | ".join(cells) + " |")


def main() -> None:
    args = script_parser(__doc__, talk=True).parse_args()
    spec, settings = config_keywords(args.config)
    model, hop, rate = spec.model, spec.hop_samples, spec.model.info.sample_rate_hz
    unpaused = {name: dataclasses.replace(s, pause_before=0.0) for name, s in settings.items()}
    labels = model.info.label_names
    by_speech = {name: dataclasses.replace(s, pause_drop_db=0.0) for name, s in settings.items()}
    setups = {"without": ServiceKeywords(unpaused, labels, hop, rate),
              "speech score only": ServiceKeywords(by_speech, labels, hop, rate),
              "with": ServiceKeywords(settings, labels, hop, rate)}
    keywords = [k for k in settings if k in labels]
    kinds = {"commands": [k for k in keywords if k in COMMANDS], "wake word": [k for k in keywords if k not in COMMANDS]}
    root = args.data.resolve()
    print(f"Keywords heard after {LEAD_S:g} s of a coffee order and a pause (validation clips, {args.config}, "
          f"{spec.name} at {1000 * hop / rate:g} ms):\n")
    scorer = Scorer(model, hop, "val")
    print_after_speech(setups, kinds, root, scorer)
    print(f"\nKeywords said over talk (validation coffee orders, from {LEAD_S:g} s before to the clip's end):\n")
    print_under_talk(setups, kinds, root, scorer)
    print()
    talk = {f"talk {p.parent.name}/{p.name}": (p.expanduser().resolve(), "all") for p in args.talk}
    print_false_accepts(setups, keywords, {"validation negatives": (root, "val")} | talk, model, hop, args.phases)


if __name__ == "__main__":
    main()
