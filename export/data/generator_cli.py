"""The command line that the clip generators of a fixed length share (synth_machines, synth_music, synth_cuckoo):
--out, --count, --seconds and --seed, then generate(out, count, seconds, seed)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from export.data.manifest import Clip


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
