"""int8 files keep the contract, keep the front end in float, and stay close to float32."""

from __future__ import annotations

import onnx
import pytest

from export.onnx_export import export_onnx, model_info
from export.quantize import FRONTEND_SCOPE, compare, quantize_int8, real_audio
from streamd.model import load_model
from tiny_families import audio, tiny

# Measured on these tiny random models over 10 s of audio (max / mean |diff|): SAT dynamic 2.9e-3 / 1.0e-3,
# SAT static 1.6e-2 / 2.1e-3, mobilenet dynamic 1.0e-2 / 1.1e-3; static int8 of the 8-channel tiny
# mobilenet was off by 0.23 / 0.06, which is why static is not the default (docs/models.md).
MAX_SCORE_DIFF = 0.03
MEAN_SCORE_DIFF = 0.005
QUANTISED_OPS = {"MatMulInteger", "ConvInteger", "DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul"}


@pytest.fixture(scope="module")
def float_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("quant")
    out = {}
    for family in ("sat", "mobilenet"):
        model = tiny(family)
        out[family] = export_onnx(model, root / f"{family}.onnx", model_info(model, licence="test"))
    return out


@pytest.mark.parametrize("family,mode", [("sat", "dynamic"), ("sat", "static"), ("mobilenet", "dynamic")])
def test_int8_loads_keeps_metadata_and_stays_close(family, mode, float_files, tmp_path):
    src = float_files[family]
    calibration = audio(10.0, seed=7)
    dst = quantize_int8(src, tmp_path / f"{family}.int8.onnx", mode, calibration=calibration)
    f32, q8 = load_model(src), load_model(dst)
    assert q8.info.labels == f32.info.labels and q8.info.hop_samples == f32.info.hop_samples
    assert q8.info.provenance == f32.info.provenance and q8.info.licence == f32.info.licence
    assert q8.info.extra == {**f32.info.extra, "quantization": f"int8-{mode}"}
    assert [s.shape for s in q8.state_specs] == [s.shape for s in f32.state_specs]

    graph = onnx.load(str(dst)).graph
    assert any(n.op_type in QUANTISED_OPS for n in graph.node), "nothing was quantised"
    assert not [n.name for n in graph.node if FRONTEND_SCOPE in n.name and n.op_type in QUANTISED_OPS]

    check = audio(10.0, seed=8)  # not the calibration audio
    for hop in f32.info.hop_samples:
        report = compare(src, dst, check, "test", hop_samples=hop, repeats=5)
        assert report.max_abs_score_diff < MAX_SCORE_DIFF and report.mean_abs_score_diff < MEAN_SCORE_DIFF, report
        assert report.max_abs_score_diff > 0  # it really is a different computation


def test_static_needs_calibration_audio(float_files, tmp_path):
    with pytest.raises(ValueError, match="static quantisation needs calibration audio"):
        quantize_int8(float_files["sat"], tmp_path / "x.onnx", "static")
    with pytest.raises(ValueError, match="mode must be one of"):
        quantize_int8(float_files["sat"], tmp_path / "x.onnx", "fp16")


def test_real_audio_is_mono_float_of_the_asked_length():
    x, source = real_audio(3.0)
    assert x.dtype.name == "float32" and x.ndim == 1 and len(x) == 48000 and abs(x).max() <= 1.0
    assert source.startswith(("real:", "synthetic"))


def test_the_command_writes_the_int8_copy_beside_the_model_and_reports_each_hop(float_files, tmp_path, capsys):
    from export.quantize import main

    src = tmp_path / "sat.onnx"
    src.write_bytes(float_files["sat"].read_bytes())
    assert main([str(src)]) == 0
    q8 = load_model(tmp_path / "sat.int8.onnx")
    assert q8.info.extra["quantization"] == "int8-dynamic"
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and not line.startswith("| hop")]
    assert [row.split(" | ")[0] for row in rows] == ["| 160", "| 320", "| 480"]
    for row in rows:  # max abs score diff, as in test_int8_loads_keeps_metadata_and_stays_close
        assert float(row.split(" | ")[5]) < MAX_SCORE_DIFF
