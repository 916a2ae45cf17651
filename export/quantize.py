"""int8 post-training quantisation of a contract model with onnxruntime, and how much it changed.

Two modes:
- ``dynamic``: int8 weights, activations quantised per call from their observed range (MatMul and
  Gemm; convolutions stay float, because ConvInteger is slower than float Conv in onnxruntime's CPU
  provider).
- ``static``: int8 weights and activations with ranges calibrated by stepping the float model over
  real audio (QDQ format, per-channel weights; Conv, MatMul and Gemm), which lets convolutions run
  as QLinearConv.

Weights are quantised to 7 bits (``reduce_range``): on x86 CPUs without VNNI (AVX2 only, as on many
small boxes) onnxruntime multiplies u8 activations by s8 weights with 16-bit intermediate sums that
saturate with full-range weights. Measured on an AVX2-only EPYC, tiny random SAT, dynamic: max score
difference 0.17 with 8-bit weights, 0.004 with 7; on a VNNI machine 8 bits gave 0.003.

The front end (DFT kernels, mel matrix, DCT) stays float in both: int8 DFT kernels would wreck the
log-mel of quiet audio. The quantised file keeps every metadata key and adds ``quantization``.
Dynamo-exported graphs need ``graph.value_info`` cleared first (FACTS.md); we always clear it.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from export.files import save_whole
from streamd.model import Model, load_model

log = logging.getLogger(__name__)

MODES = ("dynamic", "static")
FRONTEND_SCOPE = "/frontend/"  # scope the exporter puts in the names of the front end's ops
KEY_QUANTIZATION = "quantization"
# A few real clips of each kind (keyword speech, household sounds, free speech, noise) for calibration and checks.
REAL_CLIPS = (
    "kws/gsc_v2/yes", "kws/gsc_v2/stop", "kws/precise/computer", "tags/esc50/dog", "tags/esc50/clock_alarm",
    "tags/esc50/rain", "speech", "noise",
)


@dataclass(frozen=True)
class QuantReport:
    mode: str
    hop_samples: int
    float_bytes: int
    int8_bytes: int
    float_ms_per_hop: float  # median, one thread
    int8_ms_per_hop: float
    max_abs_score_diff: float  # vs float32, over every hop and label of the check audio
    mean_abs_score_diff: float
    audio_s: float
    audio_source: str


def frontend_nodes(proto: onnx.ModelProto) -> list[str]:
    return [n.name for n in proto.graph.node if FRONTEND_SCOPE in n.name]


def quantize_int8(src: str | Path, dst: str | Path, mode: str = "dynamic", calibration: np.ndarray | None = None) -> Path:
    """Write an int8 copy of the contract model at src to dst; static mode needs calibration audio."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    src, dst = Path(src), Path(dst)
    proto = onnx.load(str(src))
    metadata = {p.key: p.value for p in proto.metadata_props}
    exclude = frontend_nodes(proto)
    del proto.graph.value_info[:]
    with tempfile.TemporaryDirectory() as tmp:
        cleared, quantized = Path(tmp) / "cleared.onnx", Path(tmp) / "int8.onnx"
        onnx.save(proto, str(cleared))
        if mode == "dynamic":
            quantize_dynamic(str(cleared), str(quantized), weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul", "Gemm"], nodes_to_exclude=exclude, reduce_range=True)
        else:
            if calibration is None:
                raise ValueError("static quantisation needs calibration audio")
            reader = _CalibrationReader(load_model(src), calibration)
            quantize_static(str(cleared), str(quantized), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=["Conv", "MatMul", "Gemm"], nodes_to_exclude=exclude,
                            calibrate_method=CalibrationMethod.MinMax, reduce_range=True)
        out = onnx.load(str(quantized))
    del out.metadata_props[:]
    metadata[KEY_QUANTIZATION] = f"int8-{mode}"
    for key, value in metadata.items():
        entry = out.metadata_props.add()
        entry.key, entry.value = key, value
    save_whole(out, dst)
    return dst


class _CalibrationReader:
    """Feeds onnxruntime's calibrator the (audio, state) of every hop of a float stream over the audio."""

    def __init__(self, model: Model, audio: np.ndarray, max_hops: int = 200):
        hop = model.info.hop_samples[0]
        n_hops = min(len(audio) // hop, max_hops)
        state, self.feeds = model.new_state(), []
        for i in range(n_hops):
            chunk = audio[i * hop : (i + 1) * hop]
            self.feeds.append({"audio": chunk[None].astype(np.float32), **state})
            _, state = model.step(chunk, state)
        self._iter = iter(self.feeds)

    def get_next(self):
        return next(self._iter, None)

    def rewind(self):
        self._iter = iter(self.feeds)


def real_audio(seconds: float = 20.0, sample_rate_hz: int = 16000, clips_per_folder: int = 1) -> tuple[np.ndarray, str]:
    """Real clips from the shared data, concatenated, or the exporter's synthetic test signal without them."""
    from export.data.audio import load_audio
    from export.data.sources import SHARED_DATA
    from export.onnx_export import test_signal

    pieces = []
    for folder in REAL_CLIPS:
        files = sorted((SHARED_DATA / folder).rglob("*.flac"))[:clips_per_folder]
        pieces += [load_audio(f, sample_rate_hz)[: 5 * sample_rate_hz] for f in files]
    if not pieces:
        return test_signal(seconds, sample_rate_hz), "synthetic (chirp, tone bursts, noise)"
    audio = np.concatenate(pieces)
    return audio[: int(seconds * sample_rate_hz)].astype(np.float32), f"real: {len(pieces)} clips from {SHARED_DATA}"


def median_ms_per_hop(model: Model, hop_samples: int, repeats: int = 50) -> float:
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(hop_samples)).astype(np.float32)
    state = model.new_state()
    for _ in range(3):
        _, state = model.step(audio, state)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _, state = model.step(audio, state)
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times))


def stream_scores(model: Model, audio: np.ndarray, hop_samples: int) -> np.ndarray:
    state, scores = model.new_state(), []
    for i in range(len(audio) // hop_samples):
        s, state = model.step(audio[i * hop_samples : (i + 1) * hop_samples], state)
        scores.append(s)
    return np.stack(scores)


def compare(float_path: str | Path, int8_path: str | Path, audio: np.ndarray, audio_source: str,
            hop_samples: int | None = None, repeats: int = 50) -> QuantReport:
    """Size, one-thread speed and score difference of the int8 file against its float32 original."""
    f32, q8 = load_model(float_path, threads=1), load_model(int8_path, threads=1)
    hop = hop_samples or f32.info.hop_samples[0]
    diff = np.abs(stream_scores(f32, audio, hop) - stream_scores(q8, audio, hop))
    return QuantReport(
        mode=q8.info.extra.get(KEY_QUANTIZATION, "?"),
        hop_samples=hop,
        float_bytes=Path(float_path).stat().st_size,
        int8_bytes=Path(int8_path).stat().st_size,
        float_ms_per_hop=median_ms_per_hop(f32, hop, repeats),
        int8_ms_per_hop=median_ms_per_hop(q8, hop, repeats),
        max_abs_score_diff=float(diff.max()),
        mean_abs_score_diff=float(diff.mean()),
        audio_s=len(audio) / f32.info.sample_rate_hz,
        audio_source=audio_source,
    )


def quant_table(reports, sample_rate_hz: int) -> str:
    rows = ["| hop (ms) | float32 bytes | int8 bytes | float32 ms/hop | int8 ms/hop | max abs score diff | mean abs score diff |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in reports:
        rows.append(f"| {1000 * r.hop_samples / sample_rate_hz:.0f} | {r.float_bytes} | {r.int8_bytes} | {r.float_ms_per_hop:.3f} | "
                    f"{r.int8_ms_per_hop:.3f} | {r.max_abs_score_diff:.2e} | {r.mean_abs_score_diff:.2e} |")
    return "\n".join(rows)


def int8_copy_path(float_path: Path) -> Path:
    """Where a float file's int8 copy goes: beside it, NAME.int8.onnx."""
    return float_path.with_name(float_path.stem + ".int8" + float_path.suffix)


def quantise_and_report(float_path: Path, int8_path: Path, mode: str = "dynamic", seconds: float = 20.0) -> list[QuantReport]:
    """Write the int8 copy (calibrated on real clips where the shared data is there) and print its
    size, speed and score difference against float32 at every hop the file accepts."""
    info = load_model(float_path).info
    audio, source = real_audio(seconds, info.sample_rate_hz)
    quantize_int8(float_path, int8_path, mode, calibration=audio)
    load_model(int8_path)  # the quantised file passes the same loader
    reports = [compare(float_path, int8_path, audio, source, hop) for hop in info.hop_samples]
    print(f"wrote {int8_path} (int8-{mode}); against float32 on {reports[0].audio_s:.0f} s of {source}, one thread:")
    print(quant_table(reports, info.sample_rate_hz))
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.quantize",
                                     description="Write the int8 copy of a contract model file (NAME.int8.onnx beside it).")
    parser.add_argument("model", type=Path, help="a float32 contract ONNX file")
    parser.add_argument("--out", type=Path, help="where to write it (default: beside the model, .int8.onnx)")
    parser.add_argument("--mode", choices=MODES, default="dynamic")
    args = parser.parse_args(argv)
    quantise_and_report(args.model, args.out or int8_copy_path(args.model), args.mode)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
