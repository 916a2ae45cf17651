"""Teachers for knowledge distillation, each with its exact front end (see ../shared/teachers).

Training may use them; the shipped models never need them at run time.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from export.families.dscnn import DSCNN, MFCC_FRONTEND, DSCNNConfig
from export.frontend import FrontEnd
from export.labels import COMMANDS

DSCNN_LABELS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "_silence_", "_unknown_")
WINDOW_SAMPLES = 16000


class DSCNNTeacher(nn.Module):
    """The MLPerf Tiny reference DS-CNN: 1 s windows -> probabilities over DSCNN_LABELS."""

    def __init__(self, checkpoint: str | Path):
        super().__init__()
        self.frontend = FrontEnd(MFCC_FRONTEND)  # zero mean, unit std: the reference feeds raw MFCCs
        self.net = DSCNN(DSCNNConfig(dropout=0.0), n_labels=len(DSCNN_LABELS))
        self.net.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        self.eval()
        self.command_index = [DSCNN_LABELS.index(c) for c in COMMANDS]

    @torch.no_grad()
    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """windows (N, 16000) -> probabilities (N, 12)."""
        # The reference divides each clip by its signed maximum (not the absolute maximum).
        peak = windows.max(dim=1, keepdim=True).values
        scaled = windows / torch.where(peak > 0, peak, torch.ones_like(peak))
        return torch.softmax(self.net(self.frontend(scaled)), dim=-1)

    def command_probs(self, windows: torch.Tensor) -> torch.Tensor:
        """(N, 16000) -> (N, 10) probabilities of COMMANDS, in that order."""
        return self(windows)[:, self.command_index]


# ----------------------------------------------------------------------------------- check on real clips

def evaluate_commands(teacher: DSCNNTeacher, data_root: str | Path, split: str = "all",
                      snr_db: float | None = None, room_rt60_s: float | None = None) -> dict:
    """The teacher's 12- and 11-class accuracy on the 1 s clips of kws/gsc_v2 (zero-padded to 1 s),
    all of them or one side of training's validation split (export/data/splits.py); snr_db: with the
    split's noise/ recordings mixed in that far below each window, as `export.evaluate --snr-db` does;
    room_rt60_s: each clip heard in the room `export.evaluate --room-rt60-s` plays it in (1-4 m, seed 0)."""
    import numpy as np

    from export.data.rooms import DISTANCE_M, Rooms
    from export.evaluation.clips import clip_audio, in_group, select_clips
    from export.evaluation.streaming import with_noise
    from export.labels import SILENCE, UNKNOWN

    every, groups = select_clips(Path(data_root).resolve(), split)
    clips = [c for c in every if in_group(c, groups, "kws/gsc_v2")]
    if snr_db is not None:
        noise = [clip_audio(c, 16000, split) for c in every if in_group(c, groups, "noise")]
        if not noise:
            raise SystemExit("--snr-db needs noise/ recordings in the data's split to mix in")
        noise = np.concatenate(noise)
    rooms = None if room_rt60_s is None else Rooms(room_rt60_s, DISTANCE_M, 16000)
    no_keyword = (SILENCE, UNKNOWN)
    hits_12, hits_11, per_class = [], [], {}
    for clip in clips:
        window = np.zeros(WINDOW_SAMPLES, np.float32)
        audio = clip_audio(clip, 16000, split)
        if rooms is not None:
            audio = rooms.play(audio, str(clip.path))
        audio = audio[:WINDOW_SAMPLES]
        window[: len(audio)] = audio
        if snr_db is not None:
            rng = np.random.default_rng([0, sum(str(clip.path).encode())])
            window = with_noise(window, slice(None), noise, snr_db, rng)
        guess = DSCNN_LABELS[int(teacher(torch.from_numpy(window)[None])[0].argmax())]
        hits_12.append(guess == clip.label)
        hits_11.append(guess == clip.label or (guess in no_keyword and clip.label in no_keyword))
        per_class.setdefault(clip.label, []).append(guess == clip.label)
    return {
        "clips": len(clips),
        "accuracy_12": float(np.mean(hits_12)),
        "accuracy_11": float(np.mean(hits_11)),
        "per_class_accuracy_12": {k: round(float(np.mean(v)), 4) for k, v in sorted(per_class.items())},
    }


def main(argv: list[str] | None = None) -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(description="The DS-CNN teacher's accuracy on shared-data Speech Commands clips.")
    parser.add_argument("--checkpoint", default="../shared/teachers/dscnn-mlperf/checkpoint.pth")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--split", choices=("all", "train", "val"), default="all",
                        help="only this side of training's validation split")
    parser.add_argument("--snr-db", type=float, default=None,
                        help="mix the split's noise/ recordings into each 1 s window this many dB below it")
    parser.add_argument("--room-rt60-s", type=float, default=None,
                        help="hear each clip in the room export.evaluate --room-rt60-s plays it in (1-4 m away)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(json.dumps(evaluate_commands(DSCNNTeacher(args.checkpoint), args.data, args.split, args.snr_db,
                                       args.room_rt60_s), indent=1))


if __name__ == "__main__":
    main()
