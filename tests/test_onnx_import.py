"""A contract ONNX file written by export_model gives back a trainable torch model with the same weights."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch

from export.export_model import main as export_main
from export.families import save_checkpoint
from export.onnx_import import load_weights
from export.train import warm_start
from streamd.contract import ContractError
from tiny_families import TINY, audio, tiny

SHIPPED = Path(__file__).resolve().parent.parent / "models"


def exported(family: str, tmp_path: Path, seed: int = 0) -> tuple[torch.nn.Module, Path]:
    model = tiny(family, seed)
    checkpoint = save_checkpoint(model, tmp_path / f"{family}.pt", family, *TINY[family], {"licence": "CC0-1.0"})
    out = tmp_path / f"{family}.onnx"
    assert export_main([str(checkpoint), "--out", str(out), "--seconds", "2"]) == 0
    return model, out


@pytest.mark.parametrize("family", ["sat", "uit"])
def test_weights_come_back_exactly(family, tmp_path):
    model, path = exported(family, tmp_path)
    back, meta = load_weights(path)
    assert meta["family"] == family and meta["size"] == TINY[family][0] and meta["extra"]["licence"] == "CC0-1.0"
    want = model.state_dict()
    assert set(back.state_dict()) == set(want)
    for key, tensor in back.state_dict().items():
        assert torch.equal(tensor, want[key]), key  # square weights too: transposed back, not guessed by shape
    x = torch.from_numpy(audio(2.0))[None]
    with torch.no_grad():
        assert torch.equal(back.stream(x, 2560), model.stream(x, 2560))


def test_warm_start_from_an_onnx_file(tmp_path):
    model, path = exported("sat", tmp_path)
    fresh = tiny("sat", seed=1)
    assert not torch.equal(fresh.head.weight, model.head.weight)
    warm_start(fresh, path)
    assert torch.equal(fresh.head.weight, model.head.weight)


def test_a_file_that_is_not_what_its_metadata_says_is_refused(tmp_path):
    _, path = exported("sat", tmp_path)
    proto = onnx.load(str(path))
    for prop in proto.metadata_props:
        if prop.key == "overrides":
            prop.value = prop.value.replace('"n_layers": 2', '"n_layers": 1')
    onnx.save(proto, str(path))
    with pytest.raises(ContractError, match=r"its graph \(\d+ nodes\) is not what this code exports for its metadata"):
        load_weights(path)


def test_an_int8_file_is_refused(tmp_path):
    checkpoint = save_checkpoint(tiny("sat"), tmp_path / "sat.pt", "sat", *TINY["sat"])
    assert export_main([str(checkpoint), "--out", str(tmp_path / "sat.onnx"), "--int8", "--seconds", "2"]) == 0
    with pytest.raises(ContractError, match=r"sat.int8.onnx"):
        load_weights(tmp_path / "sat.int8.onnx")


def test_batch_norm_families_say_to_use_their_checkpoint(tmp_path):
    _, path = exported("dscnn", tmp_path)
    with pytest.raises(ContractError, match=r"batch norm .* use their checkpoint"):
        load_weights(path)


def test_the_shipped_default_model_is_importable():
    model, meta = load_weights(SHIPPED / "streamd-sat.onnx")  # checked for parity inside, at every hop
    assert meta["family"] == "sat" and sum(p.numel() for p in model.parameters()) == 572693
