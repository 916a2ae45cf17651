"""How many events one tag sound gives in the service, with and without a hold (tag settings' hold_s).

Every clip of ../shared/data under tags/ whose class is one of the config's tags (smoke_alarm and speech aside:
no clips, and off) is streamed through the config's first model at its hop, from 0.5 s of silence before it to
3 s after it, and its own tag goes through the service's smoother with the config's settings for that tag and
each --holds value in place of its hold_s. Prints per split and tag: clips heard (at least one event), clips
heard as more than one event, and events in all (docs/service.md "Tag events and holds").

    .venv/bin/python scripts/tag_fragments.py [--config config.yaml] [--holds 0 1 2]
"""

import argparse
import dataclasses
from collections import defaultdict
from pathlib import Path

import numpy as np

from export.data.audio import load_audio
from export.data.manifest import read_manifest
from export.data.splits import split_of
from export.labels import tag_name
from streamd.config import load_config
from streamd.runner import StreamRunner
from streamd.service import load_models
from streamd.smoothing import TagSmoother

LEAD_S, TAIL_S = 0.5, 3.0  # silence around each clip (s): room for a held end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--holds", type=float, nargs="+", default=[0.0, 1.0, 2.0], help="hold_s values (s)")
    args = parser.parse_args()
    config = load_config(args.config)
    settings = config.tag_settings()
    spec = load_models(config)[0]
    model, hop = spec.model, spec.hop_samples
    rate = model.info.sample_rate_hz
    names = list(model.info.label_names)
    events = defaultdict(lambda: defaultdict(list))  # (split, tag) -> hold -> events per clip
    for clip in read_manifest(Path(args.data) / "manifest.csv"):
        tag = tag_name(clip.labels[0])
        if "tags" not in clip.path.parts or tag not in settings or tag not in names or tag in ("smoke_alarm", "speech"):
            continue
        audio = np.concatenate([np.zeros(round(LEAD_S * rate), np.float32), load_audio(clip.path, rate),
                                np.zeros(round(TAIL_S * rate), np.float32)])
        scores = [r.scores[names.index(tag)] for r in StreamRunner(model, hop).push(audio)]
        for hold_s in args.holds:
            smoother = TagSmoother(tag, dataclasses.replace(settings[tag][0].smoother(hop, rate), hold_s=hold_s),
                                   rate, hop)
            starts = sum(d.kind == "start" for i, score in enumerate(scores)
                         for d in smoother.update(float(score), (i + 1) * hop))
            events[(split_of(clip), tag)][hold_s].append(starts)
    print(f"{spec.name} at {1000 * hop / rate:.0f} ms, {args.config}; per hold_s: clips heard / as more than one event "
          "/ events")
    for split in ("val", "train"):
        print(f"\n| {split} | clips | " + " | ".join(f"hold {h:g} s" for h in args.holds) + " |")
        print("|---|---|" + "---|" * len(args.holds))
        for (s, tag), by_hold in sorted(events.items()):
            if s == split:
                cells = [f"{sum(n > 0 for n in v)} / {sum(n > 1 for n in v)} / {sum(v)}" for v in by_hold.values()]
                print(f"| {tag} | {len(by_hold[args.holds[0]])} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
