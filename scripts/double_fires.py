"""Keyword clips that fire two keywords: one word, two events, as the service publishes them.

Every setting comes from a service config (default config.yaml: each keyword's threshold, speech and pause
gates, group, its first model at its latency). Each validation keyword clip of ../shared/data (Speech
Commands and Precise) is streamed as the evaluation streams it (0.5 s of silence around it, at each phase of
the hop grid). For each setting of the groups (--waits: `off` = no keyword in a group, `config` = as the
config says, or seconds = every grouped keyword waiting that long), prints the plays of keyword clips that
publish the right keyword alone, the right one and another, only others, or none; the plays of the other
clips (other words, silence, not-wake-words) that publish any; the keywords published together; and the
keyword events in the validation negative stream (speech/, noise/, tags/ and not-wake-words end to end, played
at each phase, as export.evaluate's wakeword task plays it): false accepts. Then the same for each validation
command clip said after speech (--after-speech pauses; export.evaluation.after_speech, as scripts/pause_gate.py
plays it): the commands published after the speech ended (docs/service.md "One word, one command").

    .venv/bin/python scripts/double_fires.py [--config config.yaml] [--waits off config 0.96] [--after-speech 0.45]
"""

import dataclasses
from collections import Counter

from export.evaluation.after_speech import SpeechBefore
from export.evaluation.clips import in_group, keyword_positives, select_clips
from export.evaluation.config_run import config_keywords, script_parser
from export.evaluation.context import negative_stream_of
from export.evaluation.decisions import ServiceKeywords
from export.evaluation.keywords import PAD_S
from export.evaluation.streaming import Scorer
from export.labels import COMMANDS

WAKE_CLIPS = {"computer": "computer", "hey_computer": "computer"}  # kws/precise labels that say the wake word


def with_waits(settings: dict, wait: str) -> dict:
    """The settings with groups off, as they are, or every grouped keyword waiting `wait` seconds."""
    if wait == "config":
        return settings
    if wait == "off":
        return {k: dataclasses.replace(s, group=None) for k, s in settings.items()}
    return {k: dataclasses.replace(s, group_wait_s=float(wait)) for k, s in settings.items()}


def outcome(truth: str, published: set[str]) -> str:
    if truth in published:
        return "right alone" if len(published) == 1 else "right + other"
    return "others only" if published else "none"


def print_after_speech(args, settings: dict, model, hop: int, clips: list, groups: dict) -> None:
    """Per group setting and pause: what the command clips said after speech publish once the speech ended."""
    scorer = Scorer(model, hop, "val")
    before = SpeechBefore(scorer, clips, groups)
    played = []  # (command, end of the speech in samples, pause, scores)
    for command in [k for k in settings if k in COMMANDS]:
        for clip in keyword_positives(clips, groups, command):
            word, lead = before.word_and_lead(clip)
            for pause in args.after_speech:
                played.append((command, len(lead), pause, scorer.stream([before.stream(word, lead, pause)])))
    n_clips = len(played) // len(args.after_speech)
    print(f"\nThe {n_clips} command clips after the end of a coffee order and a pause (the commands published after "
          "it: right alone / right + other / others only / none):")
    print("| groups | " + " | ".join(f"after {p:g} s" for p in args.after_speech) + " |")
    print("|---|" + "---|" * len(args.after_speech))
    for wait in args.waits:
        keywords = ServiceKeywords(with_waits(settings, wait), model.info.label_names, hop, model.info.sample_rate_hz)
        counts = {p: Counter() for p in args.after_speech}
        for command, speech_end, pause, scored in played:
            published = {k for k, ends in keywords.fired(scored).items()
                         if k in COMMANDS and max(ends, default=0) > speech_end}
            counts[pause][outcome(command, published)] += 1
        cells = [" / ".join(str(c[k]) for k in ("right alone", "right + other", "others only", "none"))
                 for c in counts.values()]
        print(f"| {wait} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--waits", nargs="+", default=["off", "config"],
                        help="group settings to compare: off, config, or seconds (default: off config)")
    parser.add_argument("--after-speech", nargs="*", type=float, default=[0.2, 0.45, 1.0],
                        help="pauses (s) between a coffee order and each command clip (default: 0.2 0.45 1; "
                             "none: skip)")
    args = parser.parse_args()
    spec, settings = config_keywords(args.config)
    model, hop = spec.model, spec.hop_samples
    labels = model.info.label_names
    every_clip, groups = select_clips(args.data.resolve(), "val")
    clips = [c for c in every_clip if in_group(c, groups, "kws/gsc_v2") or in_group(c, groups, "kws/precise")]
    scorer = Scorer(model, hop, "val", phases=args.phases)
    plays = scorer.plays(clips)
    negative = negative_stream_of(args.data.resolve(), "val", model, hop, args.phases)
    print(f"{len(plays)} plays ({len(clips)} validation keyword clips x {args.phases} phases), {args.config}; "
          f"validation negatives {negative.hours:.2f} h:")
    print("| groups | right alone | right + other | others only | none | other clips publishing | together "
          "| events in the negatives |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for wait in args.waits:
        keywords = ServiceKeywords(with_waits(settings, wait), labels, hop, model.info.sample_rate_hz)
        counts, pairs = Counter(), Counter()
        for lead, clip in plays:
            published = {k for k, ends in keywords.fired(scorer.clip(clip, PAD_S, lead_samples=lead)).items() if ends}
            truth = WAKE_CLIPS.get(clip.label, clip.label)
            if len(published) > 1:
                pairs[" + ".join(sorted(published))] += 1
            if truth not in settings:
                counts["other clips"] += bool(published)
            else:
                counts[outcome(truth, published)] += 1
        together = ", ".join(f"{k} {n}" for k, n in pairs.most_common())
        false_accepts = sum(len(ends) for ends in keywords.fired(negative.scored).values())
        print(f"| {wait} | {counts['right alone']} | {counts['right + other']} | {counts['others only']} | "
              f"{counts['none']} | {counts['other clips']} | {together} | {false_accepts} |")
    if args.after_speech:
        print_after_speech(args, settings, model, hop, every_clip, groups)


if __name__ == "__main__":
    main()
