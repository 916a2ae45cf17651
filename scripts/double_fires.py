"""Keyword clips that fire two keywords: one word, two events, as the service publishes them.

Every setting comes from a service config (default config.yaml: each keyword's threshold, speech and pause
gates, its first model at its latency). Each validation keyword clip of ../shared/data (Speech Commands and
Precise) is streamed as the evaluation streams it (0.5 s of silence around it, at each phase of the hop
grid); prints how many plays fire no keyword, one, or two and more, and of the plays that fire the right
keyword and another, how often the right one has the higher event score and how often it fires first
(README, "Where it is weak").

    .venv/bin/python scripts/double_fires.py [--config config.yaml]
"""

from collections import Counter

from export.evaluation.clips import in_group, select_clips
from export.evaluation.config_run import config_keywords, script_parser
from export.evaluation.decisions import ServiceKeywords
from export.evaluation.keywords import PAD_S
from export.evaluation.streaming import Scorer


def main() -> None:
    args = script_parser(__doc__).parse_args()
    spec, settings = config_keywords(args.config)
    model, hop = spec.model, spec.hop_samples
    labels = model.info.label_names
    keywords = ServiceKeywords(settings, labels, hop, model.info.sample_rate_hz)
    clips, groups = select_clips(args.data.resolve(), "val")
    clips = [c for c in clips if in_group(c, groups, "kws/gsc_v2") or in_group(c, groups, "kws/precise")]
    scorer = Scorer(model, hop, "val", phases=args.phases)
    fired_counts, pairs = Counter(), Counter()
    right_and_other = right_higher = right_first = 0
    for lead, clip in scorer.plays(clips):
        scored = scorer.clip(clip, PAD_S, lead_samples=lead)
        fired = {k: ends for k, ends in keywords.fired(scored).items() if ends}
        fired_counts[min(len(fired), 2)] += 1
        if len(fired) < 2:
            continue
        pairs[" + ".join(sorted(fired))] += 1
        if clip.label in fired:
            right_and_other += 1
            score = {k: max(scored.scores[end // hop - 1, labels.index(k)] for end in ends)
                     for k, ends in fired.items()}
            right_higher += max(score, key=score.get) == clip.label
            right_first += min(fired, key=lambda k: fired[k][0]) == clip.label
    plays = sum(fired_counts.values())
    print(f"{plays} plays ({len(clips)} validation keyword clips x {args.phases} phases), {args.config}:")
    print(f"  no keyword {fired_counts[0]}, one {fired_counts[1]}, two or more {fired_counts[2]}")
    print(f"  two or more with the right one among them: {right_and_other}; the right one has the higher score in "
          f"{right_higher}, fires first in {right_first}")
    print("  keywords fired together: " + ", ".join(f"{k} {n}" for k, n in pairs.most_common()))


if __name__ == "__main__":
    main()
