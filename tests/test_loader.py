"""The loader refuses each kind of malformed model file with a message that names the problem.

Each bad file is a good tiny DS-CNN export edited with the ``onnx`` package."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from export.onnx_export import export_onnx, model_info
from streamd.contract import ContractError
from streamd.model import load_model
from tiny_families import LABELS, tiny


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> onnx.ModelProto:
    model = tiny("dscnn")
    path = tmp_path_factory.mktemp("loader") / "good.onnx"
    export_onnx(model, path, model_info(model, licence="test"))
    return onnx.load(str(path))


def write(proto: onnx.ModelProto, tmp_path, name: str = "bad.onnx") -> str:
    path = tmp_path / name
    onnx.save(proto, str(path))
    return str(path)


def edited(good: onnx.ModelProto) -> onnx.ModelProto:
    proto = onnx.ModelProto()
    proto.CopyFrom(good)
    return proto


def set_meta(proto: onnx.ModelProto, key: str, value: str | None) -> None:
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key != key]
    del proto.metadata_props[:]
    for k, v in kept + ([(key, value)] if value is not None else []):
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v


def rename_value(proto: onnx.ModelProto, old: str, new: str) -> None:
    for value in list(proto.graph.input) + list(proto.graph.output):
        if value.name == old:
            value.name = new
    for node in proto.graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]


def test_good_file_loads_with_its_metadata(good, tmp_path):
    model = load_model(write(good, tmp_path, "good.onnx"))
    assert model.info.labels == LABELS and model.info.family == "dscnn"
    assert model.info.hop_samples == (2560, 5120, 7680)
    assert [s.input_name for s in model.state_specs] == ["state_in.window"]
    assert model.state_bytes == 8000 * 4


@pytest.mark.parametrize("key", ["streamd.contract", "sample_rate_hz", "hop_samples", "labels", "family",
                                 "receptive_field_s", "provenance", "licence"])
def test_missing_metadata_key(good, tmp_path, key):
    proto = edited(good)
    set_meta(proto, key, None)
    with pytest.raises(ContractError, match=rf"missing key\(s\) {key}"):
        load_model(write(proto, tmp_path))


@pytest.mark.parametrize("key,value,message", [
    ("labels", '[{"name": "yes", "kind": "keyword"', r"labels is not valid JSON"),
    ("labels", '[{"name": "yes", "kind": "word"}]', r"labels\[0\] \(yes\) has kind 'word'"),
    ("labels", json.dumps([{"name": "yes", "kind": "keyword"}, {"name": "yes", "kind": "tag"}]), r"repeats a name"),
    ("hop_samples", "[7680, 2560]", r"must be sorted"),
    ("hop_samples", '"2560"', r"non-empty JSON list of positive integers"),
    ("sample_rate_hz", "16k", r"sample_rate_hz='16k' is not an integer"),
    ("streamd.contract", "2", r"reads version '1'"),
    ("provenance", "[]", r"provenance must be a JSON object"),
    ("licence", " ", r"licence is empty"),
])
def test_malformed_metadata(good, tmp_path, key, value, message):
    proto = edited(good)
    set_meta(proto, key, value)
    with pytest.raises(ContractError, match=message):
        load_model(write(proto, tmp_path))


def test_wrong_label_count(good, tmp_path):
    proto = edited(good)
    set_meta(proto, "labels", json.dumps([{"name": "yes", "kind": "keyword"}, {"name": "dog", "kind": "tag"}]))
    with pytest.raises(ContractError, match=r"'scores' has 3 scores but the metadata lists 2 labels"):
        load_model(write(proto, tmp_path))


def test_wrong_input_name(good, tmp_path):
    proto = edited(good)
    rename_value(proto, "audio", "pcm")
    with pytest.raises(ContractError, match=r"no input named 'audio'"):
        load_model(write(proto, tmp_path))


def test_wrong_output_name(good, tmp_path):
    proto = edited(good)
    rename_value(proto, "scores", "probabilities")
    with pytest.raises(ContractError, match=r"no output named 'scores'"):
        load_model(write(proto, tmp_path))


def test_state_in_without_state_out(good, tmp_path):
    proto = edited(good)
    rename_value(proto, "state_out.window", "window_out")
    with pytest.raises(ContractError, match=r"state input 'state_in.window' has no output 'state_out.window'"):
        load_model(write(proto, tmp_path))


def test_state_with_dynamic_shape(good, tmp_path):
    proto = edited(good)
    state = next(i for i in proto.graph.input if i.name == "state_in.window")
    state.type.tensor_type.shape.dim[1].dim_param = "n"
    with pytest.raises(ContractError, match=r"'state_in.window' must have a static shape"):
        load_model(write(proto, tmp_path))


def test_state_out_shape_differs_from_state_in(good, tmp_path):
    proto = edited(good)
    out = next(o for o in proto.graph.output if o.name == "state_out.window")
    out.type.tensor_type.shape.dim[1].dim_value = 4000
    with pytest.raises(ContractError, match=r"'state_out.window' is .* but 'state_in.window' is"):
        load_model(write(proto, tmp_path))


def test_fixed_audio_length_disagrees_with_hops(good, tmp_path):
    proto = edited(good)
    audio = next(i for i in proto.graph.input if i.name == "audio")
    audio.type.tensor_type.shape.dim[1].dim_value = 2560
    with pytest.raises(ContractError, match=r"'audio' has fixed length 2560 but metadata hop_samples is \[2560, 5120, 7680\]"):
        load_model(write(proto, tmp_path))


def test_audio_of_wrong_rank(good, tmp_path):
    """onnxruntime itself refuses this one (shape inference at Concat); the loader passes its reason on."""
    proto = edited(good)
    audio = next(i for i in proto.graph.input if i.name == "audio")
    audio.type.tensor_type.shape.dim.add().dim_value = 1
    with pytest.raises(ContractError, match=r"bad.onnx: not a loadable ONNX model \(.*Concat"):
        load_model(write(proto, tmp_path))


def test_scores_not_finite_on_zero_input(good, tmp_path):
    proto = edited(good)
    rename_value(proto, "scores", "scores_raw")
    proto.graph.output[0].name = "scores"  # scores are the first output
    proto.graph.initializer.append(helper.make_tensor("nan", TensorProto.FLOAT, [], [float("nan")]))
    proto.graph.node.append(helper.make_node("Mul", ["scores_raw", "nan"], ["scores"]))
    with pytest.raises(ContractError, match=r"scores on a zero input are not finite probabilities"):
        load_model(write(proto, tmp_path))


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"\x08\x01garbage" * 10)
    with pytest.raises(ContractError, match=r"not a loadable ONNX model"):
        load_model(path)
    with pytest.raises(ContractError, match=r"no such model file"):
        load_model(tmp_path / "missing.onnx")


def test_error_names_the_file(good, tmp_path):
    proto = edited(good)
    set_meta(proto, "family", None)
    path = write(proto, tmp_path, "named_model.onnx")
    with pytest.raises(ContractError, match=r"named_model.onnx: metadata is missing key\(s\) family"):
        load_model(path)


def test_zero_state_scores_are_probabilities(good, tmp_path):
    model = load_model(write(good, tmp_path, "good.onnx"))
    scores, state = model.step(np.zeros(2560, np.float32), model.new_state())
    assert scores.shape == (3,) and np.all((scores > 0) & (scores < 1))
    assert state["state_in.window"].shape == (1, 8000) and not state["state_in.window"].any()


def test_a_model_loaded_for_one_hop_gives_the_same_numbers_with_that_hop_fixed(tmp_path):
    """The service loads each model with its hop fixed (onnxruntime folds the shape arithmetic); stepping it
    must give what the file gives with a free hop, and it takes no other hop."""
    model = tiny("sat")
    path = tmp_path / "sat.onnx"
    export_onnx(model, path, model_info(model, licence="test"))
    free = load_model(path)
    audio = np.random.default_rng(3).uniform(-0.5, 0.5, 4 * max(free.info.hop_samples)).astype(np.float32)
    for hop in free.info.hop_samples:
        fixed = load_model(path, hop_samples=hop)
        audio_input = next(i for i in fixed.session.get_inputs() if i.name == "audio")
        assert audio_input.shape == [1, hop] and fixed.hop_samples == hop
        state_free, state_fixed = free.new_state(), fixed.new_state()
        for start in range(0, len(audio), hop):
            scores_free, state_free = free.step(audio[start : start + hop], state_free)
            scores_fixed, state_fixed = fixed.step(audio[start : start + hop], state_fixed)
            np.testing.assert_allclose(scores_fixed, scores_free, atol=1e-5)
            for name in state_free:
                np.testing.assert_allclose(state_fixed[name], state_free[name], atol=1e-4)
        other = next(h for h in free.info.hop_samples if h != hop)
        with pytest.raises(Exception, match="dimensions"):
            fixed.step(audio[:other], fixed.new_state())
    with pytest.raises(ContractError, match="hop of 1000 samples is not one it accepts"):
        load_model(path, hop_samples=1000)
