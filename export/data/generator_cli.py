"""What the clip generators of a fixed length share (synth_machines, synth_music, synth_cuckoo): their command
line (--out, --count, --seconds and --seed, then generate(out, count, seconds, seed)) and the loop that writes
their clips and manifest."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from export.data.manifest import Clip, write_manifest

# clip i's file under the output folder, its labels and its audio, from i and a generator seeded by (seed, i)
ClipMaker = Callable[[int, np.random.Generator], tuple[str, tuple[str, ...], np.ndarray]]


def write_clips(out_dir: str | Path, count: int, seconds: float, seed: int, sample_rate_hz: int,
                make: ClipMaker) -> list[Clip]:
    """count clips (16-bit) under out_dir plus out_dir/manifest.csv; clip i depends on (seed, i) alone."""
    out_dir = Path(out_dir).resolve()
    clips = []
    for i in range(count):
        name, labels, audio = make(i, np.random.default_rng([seed, i]))
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), audio, sample_rate_hz, subtype="PCM_16")
        clips.append(Clip(path=path, labels=labels, duration_s=seconds))
    write_manifest(clips, out_dir / "manifest.csv")
    return clips


def run(doc: str, generate: Callable[..., list[Clip]], default_out_dir: Callable[[int], Path], argv: list[str] | None,
        count: int, seconds: float, count_help: str = "clips", seconds_help: str = "length of each clip (s)",
        ) -> tuple[list[Clip], Path, float]:
    """Parse argv, generate into --out (default: default_out_dir(seed)); (the clips, the folder, their seconds)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    folder = default_out_dir(0).parent.name
    p.add_argument("--out", type=Path, help=f"output folder (default: $STREAMD_CACHE/{folder}/seed<S>)")
    p.add_argument("--count", type=int, default=count, help=count_help)
    p.add_argument("--seconds", type=float, default=seconds, help=seconds_help)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = args.out or default_out_dir(args.seed)
    return generate(out, args.count, args.seconds, args.seed), out, args.seconds
