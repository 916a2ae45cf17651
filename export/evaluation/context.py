"""What every task shares: one model at one hop, the clips, the options, and the long negative stream."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.data.manifest import Clip
from export.evaluation.clips import NEGATIVE_GROUPS, SPEECH_TAG, in_group, select_clips
from export.evaluation.decisions import smoother_config
from export.evaluation.streaming import Scored, Scorer
from streamd.config import KeywordDefaults
from streamd.contract import KIND_KEYWORD, KIND_TAG
from streamd.gate import KeywordGate
from streamd.model import Model


def speech_gate(args: argparse.Namespace) -> dict:
    """The speech and pause gates the keyword scores went through (streamd.gate; 0: none)."""
    return {"speech_gate": args.speech_gate, "speech_gate_s": args.speech_gate_s, "pause_before": args.pause_before,
            "pause_before_s": list(args.pause_before_s), "pause_drop_db": args.pause_drop_db}


@dataclass
class Context:
    scorer: Scorer
    clips: list[Clip]
    groups: dict[Path, str]  # clip path -> folder relative to the data root
    args: argparse.Namespace
    tag_thresholds: dict[str, float] = dataclasses.field(default_factory=dict)  # set by the tags task
    negative: NegativeStream | None = None  # shared by the wakeword and alarms tasks

    @property
    def model(self) -> Model:
        return self.scorer.model

    def label_index(self, name: str) -> int | None:
        names = self.model.info.label_names
        return names.index(name) if name in names else None

    @property
    def tag_window_hops(self) -> int:
        """The tag smoother's window at this hop: TAG_WINDOW_S, as the service turns seconds into hops."""
        return smoother_config(self.scorer.hop_samples, self.scorer.sample_rate_hz).window_hops

    @property
    def speech_index(self) -> int | None:
        """The model's speech tag, if it has one."""
        return self.label_index(SPEECH_TAG) if SPEECH_TAG in self.model.info.names_of_kind(KIND_TAG) else None

    def gated(self, scored: Scored) -> Scored:
        """The scores with the hops the service's speech and pause gates close (streamd.gate) marked, as its
        triggers see them; unchanged for a model without a speech tag, as in the service."""
        speech, args = self.speech_index, self.args
        if speech is None or args.speech_gate <= 0 and args.pause_before <= 0:
            return scored
        settings = KeywordDefaults(speech_gate=args.speech_gate, speech_gate_s=args.speech_gate_s,
                                   pause_before=args.pause_before, pause_before_s=tuple(args.pause_before_s),
                                   pause_drop_db=args.pause_drop_db)
        gate = KeywordGate.of(settings, self.scorer.hop_samples, self.scorer.sample_rate_hz)
        opened = np.ones(scored.scores.shape, bool)
        keywords = [self.label_index(name) for name in self.model.info.names_of_kind(KIND_KEYWORD)]
        opened[:, keywords] = gate.opened(scored.scores[:, speech], scored.levels_db)[:, None]
        return dataclasses.replace(scored, opened=opened)

    def progress(self, iterable, desc: str, total=None, unit="clip"):
        from tqdm import tqdm

        return tqdm(iterable, desc=f"{self.model.name} {desc}", total=total, unit=unit, file=sys.stderr,
                    disable=self.args.quiet, leave=False, dynamic_ncols=True)


@dataclass
class NegativeStream:
    scored: Scored
    hours: float  # of all passes
    names: list[str]  # the clips in stream order, as folder/file under the data root
    starts: np.ndarray  # int64: the stream sample each clip starts at, pass after pass
    passes: int = 1  # the clips were played this many times, each pass at another phase of the hop grid

    def where(self, end_samples: list[int], sample_rate_hz: int) -> list[dict]:
        """Each stream position as the clip it falls in, the second within that clip, and the pass."""
        index = np.searchsorted(self.starts, end_samples, side="right") - 1
        n = len(self.names)
        return [{"clip": self.names[i % n], "at_s": round(float(e - self.starts[i]) / sample_rate_hz, 2),
                 "pass": int(i // n)} for i, e in zip(index, end_samples)]


def negative_stream(ctx: Context) -> NegativeStream:
    """speech/, noise/, tags/ and not-wake-word clips, sorted by path, as one long stream, played once per
    lead of the scorer: each pass starts that far into a hop, so a sound meets the hop grid at every phase."""
    if ctx.negative is not None:
        return ctx.negative
    clips = sorted((c for c in ctx.clips if any(in_group(c, ctx.groups, g) for g in NEGATIVE_GROUPS)),
                   key=lambda c: str(c.path))
    leads, hop = ctx.scorer.leads, ctx.scorer.hop_samples
    starts = []

    def blocks():
        played = 0
        for k, lead in enumerate(leads):
            gap = (lead - played) % hop  # silence up to the pass's phase
            if gap:
                yield np.zeros(gap, np.float32)
                played += gap
            desc = "wakeword negatives" + (f", pass {k + 1}/{len(leads)}" if len(leads) > 1 else "")
            for clip in ctx.progress(clips, desc):
                audio = ctx.scorer.audio(clip)
                starts.append(played)
                played += len(audio)
                yield audio

    scored = ctx.scorer.stream(blocks())
    hours = len(scored.end_samples) * hop / ctx.scorer.sample_rate_hz / 3600
    names = [f"{ctx.groups.get(c.path, '')}/{c.path.name}".lstrip("/") for c in clips]
    ctx.negative = NegativeStream(scored, hours, names, np.array(starts, np.int64), len(leads))
    return ctx.negative


def negative_stream_of(root: Path, split: str, model: Model, hop_samples: int, phases: int = 1) -> NegativeStream:
    """The negative stream of a data folder's split (negative_stream), quietly, for a script."""
    clips, groups = select_clips(root, split)
    scorer = Scorer(model, hop_samples, split, phases=phases)
    return negative_stream(Context(scorer, clips, groups, argparse.Namespace(quiet=True)))


def noise_background(ctx: Context) -> np.ndarray:
    """The split's noise/ recordings end to end (empty if there are none)."""
    noise = [ctx.scorer.audio(c) for c in ctx.clips if in_group(c, ctx.groups, "noise")]
    return np.concatenate(noise) if noise else np.zeros(0, np.float32)
