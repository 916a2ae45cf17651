"""Cost of every family at its default size and of the SAT's cache, on one onnxruntime thread.

    python -m export.bench_families [--json out.json] [--repeats 50]

Per family and hop: parameters, state bytes, FLOPs per second of audio (torch's FlopCounterMode
over one step: matmuls, convolutions and attention, 2 FLOPs per multiply-add, elementwise ops not
counted; the front end's DFT convolution added analytically), median ms per hop and per second of audio for float32 and dynamic int8. Then the SAT
stepped with its cache against a SAT that recomputes its whole receptive field every hop.
Untrained weights: the timings do not depend on them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from export.families import FAMILIES, build_model, default_size
from export.families.sat import SATModel
from export.labels import DEFAULT_LABELS
from export.onnx_export import export_onnx, model_info
from export.quantize import median_ms_per_hop, quantize_int8
from export.streaming import ModelCard, StreamingModel
from streamd.model import load_model

BENCH_HOPS = (2560, 7680, 15360, 30720)  # 160 / 480 / 960 / 1920 ms: the SAT's stand-ins for 0.16 / 0.5 / 1 / 2 s


@dataclass(frozen=True)
class Row:
    family: str
    size: str
    hop_samples: int
    hop_ms: float
    parameters: int
    state_bytes: int
    mflops_per_audio_s: float
    float_ms_per_hop: float
    float_ms_per_audio_s: float
    int8_ms_per_hop: float
    int8_ms_per_audio_s: float


class RecomputeSAT(StreamingModel):
    """A SAT without a token cache, for one hop size: keeps the receptive field of the hop's columns as
    audio and re-runs all of it every hop.

    Each of the hop's new columns sees n_layers * cache_columns earlier columns through the layers, so
    the window is that many columns plus the hop's own; once the stream is that old, the scores are
    the cached model's (tests/test_families.py checks it), at the cost that the cache exists to avoid."""

    def __init__(self, sat: SATModel, hop_samples: int):
        super().__init__()
        self.sat = sat
        self.hop_columns = hop_samples // sat.column_samples
        self.window_columns = sat.cfg.n_layers * sat.cfg.cache_columns + self.hop_columns
        self.window_samples = self.window_columns * sat.column_samples + sat.frontend.carry_samples
        self.card = ModelCard("sat-recompute", sat.card.labels, sat.card.sample_rate_hz, (hop_samples,), sat.card.receptive_field_s)

    def state_shapes(self):
        return {"window": (self.window_samples,)}

    def step(self, audio, state):
        window = torch.cat([state[0], audio], dim=1)[:, -self.window_samples :]
        carry = self.sat.frontend.carry_samples
        zero = [torch.zeros(audio.shape[0], *shape) for shape in self.sat.state_shapes().values()][1:]
        columns, _ = self.sat.column_logits(window[:, carry:], [window[:, :carry], *zero])  # (B, window_columns, L)
        return columns[:, -self.hop_columns :].max(dim=1).values, [window]


def flops_per_hop(model: StreamingModel, hop_samples: int) -> int:
    """FlopCounterMode over one step, plus the front end's DFT convolution, which the counter misses
    (torch.conv1d on a plain tensor is not routed through the op it counts in torch 2.13)."""
    audio = torch.zeros(1, hop_samples)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.step(audio, model.init_state(1))
    total = counter.get_total_flops()
    frontend_ops = {str(op) for op in counter.get_flop_counts().get("FrontEnd", {})}
    if "aten.convolution" not in frontend_ops:
        frontend = model.frontend if hasattr(model, "frontend") else model.sat.frontend
        samples = getattr(model, "window_samples", hop_samples + frontend.carry_samples)
        n_frames = (samples - frontend.cfg.win_samples) // frontend.cfg.hop_samples + 1
        total += 2 * n_frames * frontend.dft_kernels.shape[0] * frontend.cfg.win_samples
    return total


def measure(model: StreamingModel, family: str, size: str, workdir: Path, repeats: int, int8: bool = True) -> list[Row]:
    model = model.eval()
    path = export_onnx(model, workdir / f"{family}.onnx", model_info(model, licence="benchmark"))
    f32 = load_model(path, threads=1)
    q8 = load_model(quantize_int8(path, workdir / f"{family}.int8.onnx"), threads=1) if int8 else None
    sr = model.card.sample_rate_hz
    rows = []
    for hop in (h for h in BENCH_HOPS if h in model.card.hop_samples):
        per_s = sr / hop
        f_ms = median_ms_per_hop(f32, hop, repeats)
        q_ms = median_ms_per_hop(q8, hop, repeats) if q8 else float("nan")
        rows.append(Row(family, size, hop, 1000.0 * hop / sr, sum(p.numel() for p in model.parameters()), f32.state_bytes,
                        flops_per_hop(model, hop) * per_s / 1e6, f_ms, f_ms * per_s, q_ms, q_ms * per_s))
    return rows


def family_table(rows: list[Row]) -> str:
    lines = ["| family (size) | hop ms | params | state bytes | MFLOPs / audio s | f32 ms/hop | f32 ms / audio s | int8 ms/hop | int8 ms / audio s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.family} ({r.size}) | {r.hop_ms:.0f} | {r.parameters:,} | {r.state_bytes:,} | {r.mflops_per_audio_s:.1f} | "
                     f"{r.float_ms_per_hop:.3f} | {r.float_ms_per_audio_s:.2f} | {r.int8_ms_per_hop:.3f} | {r.int8_ms_per_audio_s:.2f} |")
    return "\n".join(lines)


def cache_table(cached: list[Row], recompute: list[Row]) -> str:
    lines = ["| hop ms | cached ms/hop | recompute ms/hop (state bytes) | time ratio | cached MFLOPs / audio s | recompute MFLOPs / audio s | FLOP ratio |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for c, r in zip(cached, recompute):
        lines.append(f"| {c.hop_ms:.0f} | {c.float_ms_per_hop:.3f} | {r.float_ms_per_hop:.3f} ({r.state_bytes:,}) | {r.float_ms_per_hop / c.float_ms_per_hop:.1f}x | "
                     f"{c.mflops_per_audio_s:.1f} | {r.mflops_per_audio_s:.1f} | {r.mflops_per_audio_s / c.mflops_per_audio_s:.1f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.bench_families", description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--repeats", type=int, default=50, help="timed steps per measurement (median reported)")
    parser.add_argument("--families", nargs="*", default=list(FAMILIES), choices=FAMILIES)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families:
            size = default_size(family)
            rows += measure(build_model(family, DEFAULT_LABELS), family, size, Path(tmp), args.repeats)
        sat = build_model("sat", DEFAULT_LABELS).eval()
        cached = [r for r in rows if r.family == "sat"] or measure(sat, "sat", default_size("sat"), Path(tmp), args.repeats)
        recompute = [row for r in cached
                     for row in measure(RecomputeSAT(sat, r.hop_samples), "sat-recompute", default_size("sat"), Path(tmp), args.repeats, int8=False)]
    print(f"{len(DEFAULT_LABELS)} labels, onnxruntime on 1 thread, median of {args.repeats} steps; SAT columns are 160 ms, "
          "so 0.5 s / 1 s / 2 s latency are the 480 / 960 / 1920 ms hops; windowed families (1 s window) stop at 960 ms.")
    print(family_table(rows))
    print(f"\nSAT ({default_size('sat')}): stepping with the token cache vs recomputing the hop's receptive field "
          f"({sat.cfg.n_layers} layers x {sat.cfg.cache_columns} cached columns + the hop's columns, as audio state) every hop, float32:")
    print(cache_table(cached, recompute))
    if args.json:
        args.json.write_text(json.dumps({"families": [asdict(r) for r in rows], "sat_recompute": [asdict(r) for r in recompute]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
