"""Wake-word arming on the default model: the commands said after the wake word, and the false accepts left.

Every setting comes from a service config (default config.yaml: each keyword's threshold, speech and pause
gates, its first model at its latency). Three setups: the config as it is ("alone": each command counts
anywhere), the same with every command waiting for the wake word (`after: computer`, `after_s`), and that
with the commands' thresholds lowered to --threshold (arming keeps their false accepts down, so they can).
Prints two Markdown tables (docs/service.md, "Wake-word arming"):

1. Commands after the wake word: each validation command clip of ../shared/data (trimmed to its word)
   follows a validation `computer` clip after a silent gap of G seconds, 1 s of silence before and 0.8 s
   after, over the kitchen recording 20 dB below the command (the same stretch of it under the command at
   every gap); heard when the command fires after its start. The wake word's own share heard is beside it.
2. False accepts of the commands (and the wake word) in negative streams: the validation negatives of
   ../shared/data and each --talk folder (export.data.synth_talk output: running speech full of near-misses),
   each played at --phases phases of the hop grid as export.evaluate plays it (hours and counts of all passes).

    .venv/bin/python scripts/wake_arming.py [--config config.yaml] [--talk ~/.cache/streamd/synth_talk/seed1000 ...]
"""

import dataclasses
from pathlib import Path

import numpy as np

from export.evaluation.clips import keyword_positives, select_clips
from export.evaluation.config_run import config_keywords, script_parser
from export.evaluation.context import negative_stream_of
from export.evaluation.decisions import ServiceKeywords
from export.evaluation.streaming import Scorer, word_only
from export.labels import COMMANDS

GAPS_S = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
LEAD_S = 1.0  # silence before the wake word (s)
TAIL_S = 0.8  # silence after the command (s)
BED_DB = -20.0  # the kitchen recording against the command (dB)
WORD_MARGIN_S = 0.03  # kept around a clip's active region (s)


def print_after_wake(setups: dict[str, ServiceKeywords], wake: str, root: Path, scorer: Scorer) -> None:
    """Table 1: per setup, the share of commands heard after the wake word and each gap."""
    clips, groups = select_clips(root, "val")
    rate = scorer.sample_rate_hz
    kitchen = scorer.audio(next(c for c in clips if c.path.name == "kitchen.flac"))
    margin = round(WORD_MARGIN_S * rate)
    wakes = [word_only(scorer.audio(c), margin) for c in keyword_positives(clips, groups, wake)]
    commands = [(k, c) for k in COMMANDS for c in keyword_positives(clips, groups, k)]
    rng = np.random.default_rng(0)
    under_s = LEAD_S + max(len(w) for w in wakes) / rate + max(GAPS_S)  # where each command sits in the kitchen
    heard = {name: np.zeros(len(GAPS_S)) for name in setups}
    woke = np.zeros(len(GAPS_S))
    for keyword, clip in commands:
        command = word_only(scorer.audio(clip), margin)
        level = np.sqrt(np.mean(command ** 2))
        spoken = wakes[rng.integers(len(wakes))]
        spoken = spoken * level / np.sqrt(np.mean(spoken ** 2))  # the two words equally loud
        for j, gap_s in enumerate(GAPS_S):
            parts = [np.zeros(round(LEAD_S * rate)), spoken, np.zeros(round(gap_s * rate)), command,
                     np.zeros(round(TAIL_S * rate))]
            stream = np.concatenate(parts)
            start = sum(len(p) for p in parts[:3])
            bed_start = round(under_s * rate) - start
            bed = kitchen[bed_start: bed_start + len(stream)]
            stream = stream + bed * level / np.sqrt(np.mean(bed ** 2)) * 10 ** (BED_DB / 20)
            scored = scorer.stream([stream.astype(np.float32)])
            for name, setup in setups.items():
                fired = setup.fired(scored)
                heard[name][j] += any(e > start for e in fired[keyword])
                if name == next(iter(setups)):
                    woke[j] += bool(fired[wake])
    n = max(1, len(commands))
    print(f"| setup ({len(commands)} command clips, {len(wakes)} `{wake}` clips) | "
          + " | ".join(f"gap {g:g} s" for g in GAPS_S) + " |")
    print("|---|" + "---|" * len(GAPS_S))
    print(f"| `{wake}` heard | " + " | ".join(f"{100 * w / n:.1f} %" for w in woke) + " |")
    for name in setups:
        print(f"| commands heard, {name} | " + " | ".join(f"{100 * h / n:.1f} %" for h in heard[name]) + " |")


def print_false_accepts(setups: dict[str, ServiceKeywords], wake: str, streams: dict[str, tuple[Path, str]], model,
                        hop_samples: int, phases: int) -> None:
    """Table 2: per negative stream and setup, the commands' false accepts (and the wake word's)."""
    print("| negative stream | hours | " + " | ".join(f"command false accepts, {name}" for name in setups)
          + f" | `{wake}` false accepts |")
    print("|---|---|" + "---|" * (len(setups) + 1))
    for title, (data, split) in streams.items():
        negative = negative_stream_of(data, split, model, hop_samples, phases)
        cells, woke = [], 0
        for setup in setups.values():
            fired = setup.fired(negative.scored)
            counts = {k: len(v) for k, v in fired.items() if k in COMMANDS}
            cells.append(", ".join(f"{k} {n}" for k, n in counts.items() if n) + f" (all {sum(counts.values())})")
            woke = len(fired.get(wake, []))
        print(f"| {title} | {negative.hours:.2f} | " + " | ".join(cells) + f" | {woke} |")


def main() -> None:
    parser = script_parser(__doc__, talk=True)
    parser.add_argument("--wake", default="computer", help="the wake word the commands wait for")
    parser.add_argument("--after-s", type=float, default=None, help="after_s (default the config's)")
    parser.add_argument("--threshold", type=float, default=0.3, help="the commands' threshold when armed")
    args = parser.parse_args()
    spec, settings = config_keywords(args.config)
    model, hop, rate = spec.model, spec.hop_samples, spec.model.info.sample_rate_hz
    after_s = args.after_s if args.after_s is not None else settings[args.wake].after_s

    def armed(threshold: float | None) -> dict:
        """The config's settings with every command waiting for the wake word, at most at threshold."""
        lowered = {name: s.threshold if threshold is None else min(s.threshold, threshold) for name, s in settings.items()}
        return {name: s if name not in COMMANDS else
                dataclasses.replace(s, after=args.wake, after_s=after_s, threshold=lowered[name])
                for name, s in settings.items()}

    labels = model.info.label_names
    setups = {"alone": ServiceKeywords(settings, labels, hop, rate),
              f"after `{args.wake}`": ServiceKeywords(armed(None), labels, hop, rate),
              f"after `{args.wake}`, thresholds <= {args.threshold:g}": ServiceKeywords(armed(args.threshold), labels,
                                                                                        hop, rate)}
    root = args.data.resolve()
    print(f"Commands after `{args.wake}` (validation clips, {args.config}, {spec.name} at {1000 * hop / rate:g} ms, "
          f"after_s {after_s:g}):\n")
    print_after_wake(setups, args.wake, root, Scorer(model, hop, "val"))
    print()
    talk = {f"talk {p.parent.name}/{p.name}": (p.expanduser().resolve(), "all") for p in args.talk}
    print_false_accepts(setups, args.wake, {"validation negatives": (root, "val")} | talk, model, hop, args.phases)


if __name__ == "__main__":
    main()
