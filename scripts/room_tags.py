"""What a model hears in the recorded rooms of ../shared/data/noise, against what the AudioSet teacher hears.

Each noise/ recording's validation part (its last part in time, which training never uses) is streamed through
each model, hop by hop, with the teacher's window of 1.28 s ending at each hop beside it. For every tag the
teacher hears at 0.5 or more in some hop (speech in the kitchen recording, a cat or a dog in the miaowing one),
prints the hops where the teacher hears it, how many of those the model also scores at 0.5 or more, and how
many hops the model scores at 0.5 or more where the teacher is below 0.2 (docs/data.md "Recorded rooms that
hold a tag"). The teacher is no ground truth; it is what the training targets take from it.

    .venv/bin/python scripts/room_tags.py models/streamd-sat.onnx [MORE.onnx ...] [--hop-ms 160]
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from export.data.audio import load_audio
from export.data.manifest import read_manifest
from export.data.splits import is_time_split, time_split
from export.data.teacher_targets import column_targets
from export.evaluation.streaming import Scorer
from export.labels import TAGS
from export.teacher_efficientat import EfficientATTeacher
from streamd.model import load_model

TEACHER = Path(__file__).resolve().parents[2] / "shared" / "teachers" / "efficientat-mn04"
HEARD, NOT_HEARD, SCORED = 0.5, 0.2, 0.5
WINDOW_S = 1.28  # the teacher's window, as its training targets hear it (8 columns of 160 ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+", help="contract ONNX models with tags")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder with manifest.csv")
    parser.add_argument("--hop-ms", type=float, default=160.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    teacher = EfficientATTeacher(TEACHER).eval()
    rooms = [c for c in read_manifest((args.data / "manifest.csv").resolve()) if is_time_split(c)]
    models = [load_model(path) for path in args.models]
    rate = models[0].info.sample_rate_hz
    hop, window = round(args.hop_ms * rate / 1000), round(WINDOW_S * rate)
    print(f"validation parts of {len(rooms)} recorded rooms, hop {args.hop_ms:g} ms; per tag the teacher hears: "
          f"hops teacher >= {HEARD} | model >= {SCORED} there | model >= {SCORED} where teacher < {NOT_HEARD}")
    for room in rooms:
        audio = time_split(load_audio(room.path, rate), "val")
        # the hops with a whole teacher window behind them, and no padding after the recording's end
        whole = slice(-(-window // hop) - 1, len(audio) // hop)
        heard = np.nan_to_num(column_targets(teacher, audio, hop, window)[whole].astype(np.float32))
        tags = [t for t in TAGS if (heard[:, TAGS.index(t)] >= HEARD).any()]
        if not tags:
            continue
        print(f"{room.path.name} ({len(audio) / rate:.0f} s):")
        for model, path in zip(models, args.models):
            scores = Scorer(model, hop).stream([audio]).scores[whole]  # each hop ends where the teacher's column does
            names = model.info.label_names
            cells = []
            for tag in (t for t in tags if t in names):
                teacher_p, model_p = heard[:, TAGS.index(tag)], scores[:, names.index(tag)]
                yes = teacher_p >= HEARD
                cells.append(f"{tag} {yes.sum()} | {(model_p[yes] >= SCORED).sum()} | "
                             f"{(model_p[teacher_p < NOT_HEARD] >= SCORED).sum()}")
            print(f"  {path.name}: " + "; ".join(cells))


if __name__ == "__main__":
    main()
