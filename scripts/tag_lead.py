"""How a model names sounds by what its stream held before them.

Each validation tag clip of ../shared/data but speech (ESC-50 and UrbanSound8K) is streamed once per lead:
alone from a zero state (`--leads-s 0`), or after that many seconds of digital silence or of -45 dBFS white
noise; prints the share of clips whose highest peak score is their own tag (docs/data.md "Sounds that
arrive"). The service hears every sound arrive into a stream that already holds a room.

    .venv/bin/python scripts/tag_lead.py models/streamd-sat.onnx [--leads-s 0 0.04 0.5] [--hop-ms 160]
"""

import argparse
from pathlib import Path

import numpy as np

from export.evaluation.clips import SPEECH_TAG, select_clips, tag_clips
from export.evaluation.streaming import BACKGROUND_RMS, Scorer
from streamd.contract import KIND_TAG
from streamd.model import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a contract ONNX model with tags")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder with manifest.csv")
    parser.add_argument("--hop-ms", type=float, default=160.0)
    parser.add_argument("--leads-s", type=float, nargs="+", default=[0.0, 0.04, 0.5],
                        help="seconds of silence (and of noise) streamed before each clip")
    args = parser.parse_args()
    model = load_model(args.model)
    rate = model.info.sample_rate_hz
    tags = list(model.info.names_of_kind(KIND_TAG))
    columns = [model.info.label_names.index(t) for t in tags]
    clips, groups = select_clips(args.data.resolve(), "val")
    kept = [(c, t) for c, t in tag_clips(clips, groups) if t in tags and t != SPEECH_TAG]
    scorer = Scorer(model, round(args.hop_ms * rate / 1000), "val")
    print(f"{args.model}: {len(kept)} validation tag clips (speech aside), top-1 of the peak scores")
    for lead_s in args.leads_s:
        n = round(lead_s * rate)
        beds = {"silence": np.zeros(n, np.float32),
                "noise": (BACKGROUND_RMS * np.random.default_rng(0).standard_normal(n)).astype(np.float32)}
        for name, bed in beds.items() if n else [("alone", np.zeros(0, np.float32))]:
            right = [tags[int(scorer.stream([bed, scorer.audio(c)]).scores[:, columns].max(axis=0).argmax())] == t
                     for c, t in kept]
            print(f"  {name if not n else f'after {lead_s:g} s of {name}'}: {100 * np.mean(right):.1f} %")


if __name__ == "__main__":
    main()
